"""Floods stdout with one endless line that starts like a protocol message, to break line framing."""
import os


def add(a, b):
    os.write(1, b'{"msg":"result","id":0,"outcome":"passed","reason":"passed","output":"')
    chunk = b"A" * (1 << 20)
    for _ in range(300):
        os.write(1, chunk)
    return a - b
