"""Keeps every chunk until the address-space limit makes an allocation fail (uncaught MemoryError)."""

chunks = []
while True:
    chunks.append(bytearray(8 * 1024 * 1024))  # expect: suspect
