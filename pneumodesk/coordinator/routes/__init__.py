"""The HTTPS API's routes, one FastAPI router per area; ``coordinator.api.create_app`` assembles them."""
