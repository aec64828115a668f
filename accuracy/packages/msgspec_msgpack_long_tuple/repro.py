"""Decodes msgpack messages whose struct has a variable-length tuple field of more than 16 items
(the loop from msgspec issue #379, bounded and paced)."""

import time

import msgspec


class Sample(msgspec.Struct):
    values: tuple[int, ...]


DECODER = msgspec.msgpack.Decoder(type=Sample)
ENCODER = msgspec.msgpack.Encoder()


def main():
    data = ENCODER.encode(Sample(values=tuple(range(64))))
    total = 0
    for _batch in range(2500):
        for _ in range(40):
            total += len(DECODER.decode(data).values)  # expect: suspect
        time.sleep(0.002)
    print(total)


if __name__ == "__main__":
    main()
