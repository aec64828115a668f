"""A warm-up that loads a lookup table and precompiles templates, then steady request handling.

All the growth is in the first second (the warm-up); the steady phase allocates and frees per request.
"""
# accuracy.verdict: no-leak

import time

TABLE = {}
TEMPLATES = []


def warm_up():
    for code in range(60_000):
        TABLE[f"sku-{code}"] = (code, f"product {code}", code * 1.5)
    for n in range(200):
        TEMPLATES.append(compile(f"x{n} = {n} * 2", f"<template {n}>", "exec"))


def handle(i):
    items = [TABLE[f"sku-{(i * 31 + k) % 60_000}"] for k in range(50)]
    return sum(price for _, _, price in items)


def main():
    warm_up()
    total = 0.0
    for i in range(3000):
        total += handle(i)
        if i % 10 == 0:
            time.sleep(0.015)
    print(f"total {total:.0f}")


if __name__ == "__main__":
    main()
