"""An API route that builds a TypeAdapter for a list of recursive models on every call and validates
the request with it (the reproducer of pydantic issue #8397, bounded)."""

import time

from pydantic import BaseModel, TypeAdapter


class Bar(BaseModel):
    pass


class Foo(BaseModel):
    children: list["Foo"]
    bar: Bar


def get_foo():
    return TypeAdapter(list[Foo]).validate_python([{"children": [], "bar": Bar()}])  # expect: suspect


def main():
    total = 0
    for _batch in range(2500):
        total += len(get_foo())
        time.sleep(0.001)
    print(total)


if __name__ == "__main__":
    main()
