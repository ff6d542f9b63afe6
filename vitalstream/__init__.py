"""VitalStream: a streaming pipeline for people living with diabetes and high blood pressure."""

__version__ = "0.1.0"
