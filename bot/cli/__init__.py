"""The `haochaping` command."""
