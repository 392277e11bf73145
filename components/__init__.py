"""Custom TFX components and executors, where TFX has no working one of its own."""
