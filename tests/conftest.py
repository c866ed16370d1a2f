"""Puts tests/ on the import path, so every suite shares tapwire_support."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
