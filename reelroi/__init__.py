"""reelroi: event-sourced ad and unlock attribution for micro short dramas."""

__version__ = "0.1.0"
