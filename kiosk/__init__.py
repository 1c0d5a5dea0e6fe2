"""Check-in kiosk: shows the venue QR code, reads visitors' codes, decides, signals, records, publishes."""

__version__ = "0.1.0"
