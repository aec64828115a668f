"""Decodes JSON request bodies into a msgspec.Struct in a loop, as an API server does."""

import time

import msgspec


class Order(msgspec.Struct):
    id: int
    customer: str
    items: list[str]
    note: str


DECODER = msgspec.json.Decoder(Order)


def main():
    body = msgspec.json.encode(Order(1, "acme", [f"sku-{k}" for k in range(20)], "deliver " * 20))
    total = 0
    for _batch in range(2500):
        for _ in range(30):
            total += DECODER.decode(body).id  # expect: suspect
        time.sleep(0.002)
    print(total)


if __name__ == "__main__":
    main()
