"""CLI verbs, one module each; every module has ``add_parser(subparsers)`` that sets ``func``."""
