"""A target whose names and messages look like markup: the report must show them, never run them."""

import time

kept = {}


def handler_named_like_html():
    for i in range(40):
        kept[f"<img src=x onerror=alert({i})>"] = bytearray(300_000)  # expect: suspect
        time.sleep(0.05)


handler_named_like_html()
raise RuntimeError("<script>alert('pwned')</script> & </table>")
