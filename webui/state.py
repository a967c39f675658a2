"""Per-app objects (settings, database, Celery client) stored on the Flask app, read inside requests."""

from __future__ import annotations

from celery import Celery
from flask import current_app

from inkwell.config import Settings
from inkwell.db import Database

EXTENSION = "inkwell"


def settings() -> Settings:
    return current_app.extensions[EXTENSION]["settings"]


def database() -> Database:
    return current_app.extensions[EXTENSION]["database"]


def celery_app() -> Celery:
    return current_app.extensions[EXTENSION]["celery"]
