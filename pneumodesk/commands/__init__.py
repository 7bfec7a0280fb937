"""One module per ``pneumodesk`` subcommand: its ``add_*_parser`` (light: it runs at every start) and its run
function, which does the heavy imports (torch, the node stack, the client) inside."""
