"""A bytearray in a class attribute, extended in place at every call: one object, growing in size."""

import time


class Recorder:
    journal = bytearray()  # every frame ever recorded

    def record(self, frame):
        Recorder.journal += frame  # expect: grows


def main():
    recorder = Recorder()
    chunk = b"x" * 20000
    for _ in range(300):
        recorder.record(chunk)
        time.sleep(0.02)
    print(len(Recorder.journal))


if __name__ == "__main__":
    main()
