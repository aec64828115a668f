"""A target that raises before it does any of its work."""

import json


def load_settings():
    return json.loads("{not json")


def main():
    settings = load_settings()
    print(settings)


if __name__ == "__main__":
    main()
