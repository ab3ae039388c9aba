from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


@pytest.fixture
def corpus():
    def read(name: str) -> str:
        return (CORPUS / name).read_text()

    return read
