"""distilfuse: infrared-visible image fusion by knowledge distillation."""

__version__ = "0.1.0"
