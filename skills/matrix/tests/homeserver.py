#!/usr/bin/env python3
"""Test homeserver for the Matrix skill's integration test: a real Synapse.

Usage (run with the Python of a venv that has `matrix-synapse` installed,
e.g. $PINCER_TEST_MATRIX_PYTHON):

  python homeserver.py DIR PORT
      Write a Synapse config into DIR (created if missing) and exec Synapse in
      the foreground: this process *becomes* Synapse (same pid), so whoever
      spawned it can kill it directly. Serves only the client API (which also
      carries /_synapse/admin) on http://127.0.0.1:PORT, server_name
      `localhost`, SQLite database, media and log (DIR/homeserver.log, WARNING)
      all in DIR. Nothing useful is printed on stdout. Config generation is
      offline and takes milliseconds; Synapse itself needs a few seconds before
      it answers (see `wait`).

  python homeserver.py wait URL [TIMEOUT_SECONDS]
      Poll URL/_matrix/client/versions until it answers 200 (default timeout
      60 s). Exit 0 when up, 1 on timeout.

  python homeserver.py register URL DIR USER PASSWORD [admin]
      Register local user USER (a localpart, e.g. `pincer`) through the
      shared-secret admin API (/_synapse/admin/v1/register, nonce + HMAC-SHA1)
      using the secret stored in DIR/homeserver.yaml. Retries while the server
      is not yet accepting connections (up to 60 s). Prints one JSON line:
        {"user_id": "@USER:localhost", "access_token": "...", "device_id": "..."}
      Exits non-zero (message on stderr) on failure, e.g. M_USER_IN_USE.

Only the Python standard library is used outside the exec'd Synapse, so the
config can be written by any python3; the exec uses sys.executable, so run
this file with the venv's python.
"""

import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request

SERVER_NAME = "localhost"

# Every rate limiter Synapse knows (synapse/config/ratelimiting.py), opened up.
_OPEN = {"per_second": 100000, "burst_count": 1000000}


def _ratelimits():
    return {
        "rc_message": _OPEN,
        "rc_registration": _OPEN,
        "rc_registration_token_validity": _OPEN,
        "rc_login": {"address": _OPEN, "account": _OPEN, "failed_attempts": _OPEN},
        "rc_admin_redaction": _OPEN,
        "rc_joins": {"local": _OPEN, "remote": _OPEN},
        "rc_joins_per_room": _OPEN,
        "rc_3pid_validation": _OPEN,
        "rc_invites": {"per_room": _OPEN, "per_user": _OPEN, "per_issuer": _OPEN},
        "rc_third_party_invite": _OPEN,
        "rc_key_requests": _OPEN,
        "rc_media_create": _OPEN,
        "rc_presence": {"per_user": _OPEN},
        "rc_delayed_event_mgmt": _OPEN,
        "rc_room_creation": _OPEN,
        "rc_reports": _OPEN,
        "rc_user_directory": _OPEN,
        "rc_profile": _OPEN,
        "rc_federation": {
            "window_size": 1000,
            "sleep_limit": 100000,
            "sleep_delay": 1,
            "reject_limit": 100000,
            "concurrent": 1000,
        },
    }


def _signing_key_line():
    """An ed25519 signing key in Synapse's file format: 'ed25519 VERSION SEED'.

    Uses signedjson (a Synapse dependency) when available, else a random seed
    in the same format (an ed25519 private key is any 32 random bytes).
    """
    try:
        from signedjson.key import generate_signing_key, encode_signing_key_base64

        key = generate_signing_key("a_test")
        return "%s %s %s" % (key.alg, key.version, encode_signing_key_base64(key))
    except ImportError:
        import base64

        seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        return "ed25519 a_test %s" % seed


def write_config(directory, port):
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    os.makedirs(os.path.join(directory, "media_store"), exist_ok=True)

    key_path = os.path.join(directory, "signing.key")
    if not os.path.exists(key_path):
        with open(key_path, "w") as f:
            f.write(_signing_key_line() + "\n")

    config_path = os.path.join(directory, "homeserver.yaml")
    old = {}
    if os.path.exists(config_path):  # keep secrets stable across restarts
        try:
            with open(config_path) as f:
                old = json.load(f)
        except (ValueError, OSError):
            old = {}

    def secret(name):
        return old.get(name) or secrets.token_hex(32)

    log_config_path = os.path.join(directory, "log.config")
    log_config = {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s"
                " - %(request)s - %(message)s"
            }
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": os.path.join(directory, "homeserver.log"),
                "encoding": "utf8",
            }
        },
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }
    with open(log_config_path, "w") as f:
        json.dump(log_config, f, indent=2)

    config = {
        "server_name": SERVER_NAME,
        "public_baseurl": "http://127.0.0.1:%d/" % port,
        "report_stats": False,
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                # "client" also mounts /_synapse/admin (shared-secret register).
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {
            "name": "sqlite3",
            "args": {"database": os.path.join(directory, "homeserver.db")},
        },
        "log_config": log_config_path,
        "media_store_path": os.path.join(directory, "media_store"),
        "signing_key_path": key_path,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "registration_shared_secret": secret("registration_shared_secret"),
        "enable_registration": False,
        "macaroon_secret_key": secret("macaroon_secret_key"),
        "form_secret": secret("form_secret"),
        "enable_metrics": False,
        "url_preview_enabled": False,
        # No presence: it only adds sync wake-ups a test does not want.
        "presence": {"enabled": False},
        # Nothing should ever leave this machine.
        "federation_domain_whitelist": [],
        **_ratelimits(),
    }
    # JSON is valid YAML; it also lets `register` read the file without PyYAML.
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)
    return config_path


def serve(directory, port):
    config_path = write_config(directory, port)
    os.chdir(os.path.dirname(config_path))
    env = dict(os.environ)
    # Twisted/Synapse deprecation noise would only clutter the test's stderr.
    env.setdefault("PYTHONWARNINGS", "ignore")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(
        sys.executable,
        [sys.executable, "-m", "synapse.app.homeserver", "-c", config_path],
        env,
    )


def _http(method, url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"error": raw.decode(errors="replace")}


def _is_connection_error(exc):
    return isinstance(exc, (ConnectionError, TimeoutError)) or (
        isinstance(exc, urllib.error.URLError)
        and not isinstance(exc, urllib.error.HTTPError)
    )


def wait(url, timeout_s=60.0):
    url = url.rstrip("/")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            status, _ = _http("GET", url + "/_matrix/client/versions", timeout=2)
            if status == 200:
                return True
        except Exception as exc:  # noqa: BLE001 - not up yet
            if not _is_connection_error(exc):
                raise
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def register(url, directory, user, password, admin=False):
    url = url.rstrip("/")
    deadline = time.monotonic() + 60
    config_path = os.path.join(directory, "homeserver.yaml")
    while True:  # the server may have been spawned a moment ago
        try:
            with open(config_path) as f:
                shared_secret = json.load(f)["registration_shared_secret"]
            break
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    endpoint = url + "/_synapse/admin/v1/register"

    while True:
        try:
            status, body = _http("GET", endpoint)
            break
        except Exception as exc:  # noqa: BLE001
            if not _is_connection_error(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    if status != 200:
        raise SystemExit(
            "register: nonce request failed: %s %s" % (status, json.dumps(body))
        )
    nonce = body["nonce"]

    mac = hmac.new(shared_secret.encode("utf8"), digestmod=hashlib.sha1)
    mac.update(nonce.encode("utf8"))
    mac.update(b"\x00")
    mac.update(user.encode("utf8"))
    mac.update(b"\x00")
    mac.update(password.encode("utf8"))
    mac.update(b"\x00")
    mac.update(b"admin" if admin else b"notadmin")

    status, body = _http(
        "POST",
        endpoint,
        {
            "nonce": nonce,
            "username": user,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        },
    )
    if status != 200:
        raise SystemExit(
            "register: %s failed: %s %s" % (user, status, json.dumps(body))
        )
    out = {
        "user_id": body["user_id"],
        "access_token": body["access_token"],
        "device_id": body["device_id"],
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def main(argv):
    if len(argv) >= 2 and argv[1] == "register":
        if len(argv) not in (6, 7) or (len(argv) == 7 and argv[6] != "admin"):
            raise SystemExit(__doc__)
        register(argv[2], argv[3], argv[4], argv[5], admin=len(argv) == 7)
    elif len(argv) >= 2 and argv[1] == "wait":
        if len(argv) not in (3, 4):
            raise SystemExit(__doc__)
        ok = wait(argv[2], float(argv[3]) if len(argv) == 4 else 60.0)
        if not ok:
            raise SystemExit("wait: %s did not answer in time" % argv[2])
    elif len(argv) == 3:
        serve(argv[1], int(argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
