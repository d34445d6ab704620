"""The pages' one Blueprint; every page module registers its routes and hooks on it."""

from __future__ import annotations

from flask import Blueprint

# named after the package so the blueprint's import name is the one it always had
pages = Blueprint("pages", "webapp.pages")
