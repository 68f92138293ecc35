"""The stack's secrets: from the settings (.env), else made once and kept in state_dir."""

from __future__ import annotations

import secrets

from pydantic import SecretStr

from app.config import Settings


def kept_secret(settings: Settings, name: str, configured: SecretStr | None) -> str:
    """A secret from settings, else one made once and kept in state_dir (mode 600)."""
    if configured:
        return configured.get_secret_value()
    path = settings.state_dir / name
    if not path.exists():
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def admin_token(settings: Settings) -> str:
    """The API's admin token (`WORKBOOK_ADMIN_TOKEN`, else `.stack/admin-token`)."""
    return kept_secret(settings, "admin-token", settings.admin_token)


def grafana_password(settings: Settings) -> str:
    """Grafana's admin password (`WORKBOOK_GRAFANA_ADMIN_PASSWORD`, else in state_dir)."""
    return kept_secret(settings, "grafana-admin-password", settings.grafana_admin_password)
