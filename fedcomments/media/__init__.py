"""Remote images as a format, pure of the server: the decoder child that checks and
re-encodes them with Pillow (`decoder`), the only place Pillow is loaded."""
