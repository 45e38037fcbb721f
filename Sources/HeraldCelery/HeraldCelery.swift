// Celery message protocol v2 (see CeleryMessage.swift).
