"""Rendering the nginx configuration from settings."""

from __future__ import annotations

from gateway.nginx import NginxSettings, check_config, main, render


def test_rendered_config_passes_nginx_check(tmp_path):
    settings = NginxSettings(
        trusted_proxies=["10.0.0.0/8", "192.0.2.1"],
        cors_origins=["https://app.example", "https://admin.example"],
    )

    path = render(settings, tmp_path)

    check_config(tmp_path)
    text = path.read_text()
    assert "set_real_ip_from 10.0.0.0/8;" in text
    assert "set_real_ip_from 192.0.2.1;" in text
    assert '"https://admin.example" $http_origin;' in text
    assert f"pid {tmp_path.resolve()}/nginx.pid;" in text


def test_no_trusted_proxy_by_default(tmp_path):
    text = render(NginxSettings(), tmp_path).read_text()

    assert "set_real_ip_from" not in text


def test_settings_read_comma_lists(monkeypatch):
    monkeypatch.setenv("GATEWAY_PORT", "9090")
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "")

    settings = NginxSettings()

    assert settings.port == 9090
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.trusted_proxies == []


def test_render_command_prints_path(tmp_path, capsys):
    status = main(["render", "--runtime-dir", str(tmp_path)])

    assert status == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "nginx.conf")
