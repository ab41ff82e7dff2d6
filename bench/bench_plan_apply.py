ABOUT: list[str] = []


async def main() -> tuple[list[str], list[str]]:
    return [], []
