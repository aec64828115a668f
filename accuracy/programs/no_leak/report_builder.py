"""A report builder: each report renders thousands of rows into a large temporary StringIO and a list of
lines, writes a summary, and drops the buffers. Big temporary buffers, nothing kept."""
# accuracy.verdict: no-leak

import io
import time


def build_report(n):
    buffer = io.StringIO()
    lines = []
    for row in range(20_000):
        line = f"{n:04d} | row {row:06d} | {row * 3.14159:12.3f} | {'ok' if row % 7 else 'retry'}\n"
        lines.append(line)
        buffer.write(line)
    body = buffer.getvalue()
    return len(body) + len(lines)


def main():
    sizes = 0
    for n in range(60):
        sizes += build_report(n)
        time.sleep(0.05)
    print(sizes)


if __name__ == "__main__":
    main()
