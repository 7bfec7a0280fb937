"""Dialogs and the access gate: Help dialogs, plan review, confirmations, and the sign-in / lock screen."""
