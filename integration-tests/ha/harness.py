#!/usr/bin/env python3
"""Drive a real Home Assistant 2024.3.3 from a script, for janitoo-rs integration tests.

Standard library only: runs with the system python3 or the venv's python.
Home Assistant itself runs from a venv (default target/ha-venv, made by
`harness.py make-venv`), always with `--skip-pip`, so it never installs
anything at run time; websocket commands use the venv's aiohttp.

Library use:
    ha = HomeAssistant(config_dir, port=free_port())
    ha.write_config(); ha.start(); ha.onboard(); ha.add_mqtt("127.0.0.1", 18830)
    ha.wait_state("sensor.x", lambda s: s["state"] == "21.5")
    ha.ws("config/device_registry/list"); ha.stop()

CLI: see `harness.py -h` (make-venv, selftest, up, down, states, devices,
entities, entries, call, wait).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HA_VERSION = "2024.3.3"
# The workspace's target/ha-venv, kept between runs as the build is.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_VENV = os.environ.get("HA_VENV", os.path.join(REPO, "target", "ha-venv"))
# Requirements of every integration HA 2024.3.3 sets up in this harness's
# configuration (DEFAULT_INTEGRATIONS of bootstrap.py + api/config/onboarding
# + mqtt, dependencies and after_dependencies included). frontend is not
# optional: it is in DEFAULT_INTEGRATIONS and CRITICAL_INTEGRATIONS.
EXTRA_REQUIREMENTS = [
    "paho-mqtt==1.6.1",                      # mqtt
    "janus==1.0.0",                          # file_upload (mqtt dep)
    "home-assistant-frontend==20240307.0",   # frontend (critical)
    "Pillow==10.2.0",                        # image_upload (person dep)
    "securetar==2024.2.1",                   # backup
    "psutil-home-assistant==0.0.1",          # hardware, recorder
    "SQLAlchemy==2.0.27",                    # recorder (after_dep of several)
    "fnv-hash-fast==0.5.0",                  # recorder
    # Not pinned by HA: josepy 2.x dropped ComparableX509 that acme 2.8.0 uses;
    # hass_nabucasa imports acme from the http forwarded middleware -> HTTP 500.
    "josepy==1.14.0",
    # mqtt sets up all its platforms, camera included; camera imports stream,
    # which imports numpy (ha-av is only needed to actually stream).
    "numpy==1.26.0",
    "PyTurboJPEG==1.7.1",
]
HASS_FLAGS = ["--skip-pip", "--log-no-color"]


# --------------------------------------------------------------------------
# small utilities

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll pred() until it returns a truthy value; return it or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polling tolerates transient errors
            last_exc = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}"
                               + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


class HttpError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def http(method: str, url: str, body=None, token: str | None = None,
         form: bool = False, timeout: float = 30):
    """Returns (status, parsed JSON or text). Raises HttpError on >= 400."""
    headers = {}
    data = None
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        raise HttpError(e.code, e.read().decode(errors="replace")) from None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


# --------------------------------------------------------------------------
# websocket commands, with the venv's own client (aiohttp, which Home Assistant uses)

WS_CLIENT = r"""
import asyncio, json, sys

import aiohttp


async def main(url, token, messages):
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, max_msg_size=0, timeout=30) as ws:
            hello = await ws.receive_json()
            assert hello["type"] == "auth_required", hello
            await ws.send_json({"type": "auth", "access_token": token})
            ok = await ws.receive_json()
            if ok["type"] != "auth_ok":
                sys.exit(f"websocket auth failed: {ok}")
            results = []
            for i, m in enumerate(messages, start=1):
                await ws.send_json({"id": i, **m})
                while True:
                    r = await ws.receive_json()
                    if r.get("id") == i and r.get("type") == "result":
                        break
                if not r.get("success"):
                    sys.exit(f"websocket {m['type']} failed: {r.get('error')}")
                results.append(r.get("result"))
            return results


request = json.load(sys.stdin)
print(json.dumps(asyncio.run(main(sys.argv[1], request["token"], request["messages"]))))
"""


# --------------------------------------------------------------------------
# Mosquitto (for the self-test and for callers without their own broker)

class Mosquitto:
    def __init__(self, port: int, workdir: str):
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> None:
        conf = os.path.join(self.workdir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                    "persistence false\n")
        log = open(os.path.join(self.workdir, "mosquitto.log"), "wb")
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode})")
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        wait_until(up, timeout, what="mosquitto port")

    def pub(self, topic: str, payload: str, retain: bool = True) -> None:
        cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-t", topic,
               "-m", payload, "-q", "1"] + (["-r"] if retain else [])
        subprocess.run(cmd, check=True, timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------
# Home Assistant

class HomeAssistant:
    def __init__(self, config_dir: str, port: int | None = None,
                 venv: str = DEFAULT_VENV):
        self.config_dir = os.path.abspath(config_dir)
        self.port = port or free_port()
        self.venv = venv
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.token: str | None = None
        self.t_spawn: float | None = None
        self.timings: dict[str, float] = {}

    # -- paths / urls
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client_id(self) -> str:
        return f"{self.url}/"

    @property
    def state_file(self) -> str:
        return os.path.join(self.config_dir, "harness.json")

    @property
    def log_file(self) -> str:
        return os.path.join(self.config_dir, "home-assistant.log")

    def save_state(self) -> None:
        with open(self.state_file, "w") as f:
            json.dump({"pid": self.pid, "port": self.port, "url": self.url,
                       "token": self.token, "venv": self.venv}, f, indent=1)

    @classmethod
    def from_state(cls, config_dir: str) -> "HomeAssistant":
        with open(os.path.join(config_dir, "harness.json")) as f:
            st = json.load(f)
        ha = cls(config_dir, st["port"], st.get("venv", DEFAULT_VENV))
        ha.pid, ha.token = st["pid"], st["token"]
        return ha

    # -- config
    def write_config(self, extra_yaml: str = "") -> None:
        """Minimal configuration: no default_config. HA always sets up its
        DEFAULT_INTEGRATIONS (frontend, person, automation, ...); frontend pulls
        in api, auth, config, onboarding, websocket_api. So only http (bind
        address/port) and a fixed core config (no location detection) are set."""
        os.makedirs(os.path.join(self.config_dir, ".storage"), exist_ok=True)
        with open(os.path.join(self.config_dir, "configuration.yaml"), "w") as f:
            f.write(f"""homeassistant:
  name: janitoo-test
  latitude: 48.85
  longitude: 2.35
  elevation: 35
  unit_system: metric
  currency: EUR
  country: FR
  time_zone: UTC
http:
  server_host: 127.0.0.1
  server_port: {self.port}
logger:
  default: info
{extra_yaml}""")
        # Pre-mark the onboarding "core_config" step done: its REST endpoint
        # starts config flows for google_translate, met, radio_browser and
        # shopping_list (extra packages + internet). The other steps (user,
        # analytics, integration) are done over REST by onboard().
        onboarding = os.path.join(self.config_dir, ".storage", "onboarding")
        if not os.path.exists(onboarding):
            with open(onboarding, "w") as f:
                json.dump({"version": 4, "minor_version": 1, "key": "onboarding",
                           "data": {"done": ["core_config"]}}, f)

    # -- process
    def start(self, timeout: float = 120) -> float:
        """Start hass; wait until HTTP answers. Returns seconds to first answer."""
        hass = os.path.join(self.venv, "bin", "hass")
        if not os.path.exists(hass):
            raise FileNotFoundError(f"{hass} missing: run `harness.py make-venv`")
        out = open(os.path.join(self.config_dir, "hass.stdout.log"), "ab")
        t0 = self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen([hass, "-c", self.config_dir, *HASS_FLAGS],
                                     stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.pid = self.proc.pid
        self.save_state()

        def answering():
            if self.proc.poll() is not None:
                raise RuntimeError(f"hass exited with {self.proc.returncode}; "
                                   f"see {self.log_file}")
            try:
                # 200 before onboarding; 404 once onboarding is complete.
                http("GET", self.url + "/api/onboarding", timeout=2)
            except HttpError as e:
                if e.status not in (404,):
                    raise
            return True
        try:
            wait_until(answering, timeout, 0.25, "HA http server")
        except BaseException:
            self.stop()
            raise
        self.timings["start_to_http"] = time.monotonic() - t0
        return self.timings["start_to_http"]

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if self.pid:
            try:
                os.kill(self.pid, 0)
                return True
            except OSError:
                return False
        return False

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM, wait; SIGKILL after timeout. Returns exit code if known."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            return self.proc.returncode
        if self.pid and self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                wait_until(lambda: not self.alive(), timeout, 0.2, "hass exit")
            except TimeoutError:
                os.kill(self.pid, signal.SIGKILL)
        return None

    # -- REST
    def api(self, method: str, path: str, body=None, timeout: float = 30):
        return http(method, self.url + path, body, token=self.token, timeout=timeout)[1]

    def onboarding_status(self) -> dict[str, bool]:
        try:
            return {s["step"]: s["done"] for s in self.api("GET", "/api/onboarding")}
        except HttpError as e:
            if e.status == 404:  # views are not registered once fully onboarded
                return {}
            raise

    def onboard(self, username: str = "admin", password: str = "janitoo-test-pw",
                name: str = "Admin", language: str = "en") -> str:
        """user step -> auth code -> access token; then analytics and integration
        steps so the instance is fully onboarded (frontend shows login, not the
        onboarding wizard). Also creates a long-lived token (stored in
        harness.json) so the access token's 30 min expiry does not matter."""
        t0 = time.monotonic()
        _, r = http("POST", self.url + "/api/onboarding/users",
                    {"client_id": self.client_id, "name": name, "username": username,
                     "password": password, "language": language})
        _, tok = http("POST", self.url + "/auth/token",
                      {"grant_type": "authorization_code", "code": r["auth_code"],
                       "client_id": self.client_id}, form=True)
        self.token = tok["access_token"]
        status = self.onboarding_status()
        if status.get("analytics") is False:
            self.api("POST", "/api/onboarding/analytics", {})
        if status.get("integration") is False:
            self.api("POST", "/api/onboarding/integration",
                     {"client_id": self.client_id,
                      "redirect_uri": f"{self.url}/?auth_callback=1"})
        self.token = self.ws("auth/long_lived_access_token",
                             client_name="janitoo-harness", lifespan=3650)
        self.save_state()
        self.timings["onboard"] = time.monotonic() - t0
        return self.token

    def login(self, username: str, password: str) -> str:
        """Log in through the login flow (for an already onboarded config dir)."""
        _, f = http("POST", self.url + "/auth/login_flow",
                    {"client_id": self.client_id, "handler": ["homeassistant", None],
                     "redirect_uri": f"{self.url}/?auth_callback=1"})
        _, r = http("POST", self.url + f"/auth/login_flow/{f['flow_id']}",
                    {"client_id": self.client_id, "username": username,
                     "password": password})
        if r.get("type") != "create_entry":
            raise RuntimeError(f"login failed: {r}")
        _, tok = http("POST", self.url + "/auth/token",
                      {"grant_type": "authorization_code", "code": r["result"],
                       "client_id": self.client_id}, form=True)
        self.token = tok["access_token"]
        self.save_state()
        return self.token

    def wait_running(self, timeout: float = 120) -> dict:
        """Wait until core state is RUNNING (all startup integrations set up)."""
        c = wait_until(lambda: (c := self.api("GET", "/api/config"))
                       and c.get("state") == "RUNNING" and c, timeout, 0.1,
                       "HA core state RUNNING")
        if self.t_spawn is not None and "start_to_running" not in self.timings:
            self.timings["start_to_running"] = time.monotonic() - self.t_spawn
        return c

    def config_entries(self, domain: str | None = None) -> list[dict]:
        q = f"?domain={domain}" if domain else ""
        return self.api("GET", f"/api/config/config_entries/entry{q}")

    def add_mqtt(self, broker: str = "127.0.0.1", port: int = 1883,
                 username: str | None = None, password: str | None = None,
                 timeout: float = 30) -> dict:
        """MQTT config flow over REST: step 'user' delegates to form 'broker'
        (fields: broker, port, username, password). Waits for state 'loaded'."""
        t0 = time.monotonic()
        flow = self.api("POST", "/api/config/config_entries/flow",
                        {"handler": "mqtt", "show_advanced_options": False})
        if flow.get("type") != "form":
            raise RuntimeError(f"mqtt flow did not start with a form: {flow}")
        data = {"broker": broker, "port": port}
        if username is not None:
            data["username"] = username
        if password is not None:
            data["password"] = password
        res = self.api("POST", f"/api/config/config_entries/flow/{flow['flow_id']}", data)
        if res.get("type") != "create_entry":
            raise RuntimeError(f"mqtt flow did not create an entry: {res}")
        entry_id = res["result"]["entry_id"]
        entry = wait_until(
            lambda: next((e for e in self.config_entries("mqtt")
                          if e["entry_id"] == entry_id and e["state"] == "loaded"), None),
            timeout, 0.2, "mqtt config entry loaded")
        self.timings["mqtt_flow"] = time.monotonic() - t0
        return entry

    def states(self) -> list[dict]:
        return self.api("GET", "/api/states")

    def state(self, entity_id: str) -> dict | None:
        try:
            return self.api("GET", f"/api/states/{entity_id}")
        except HttpError as e:
            if e.status == 404:
                return None
            raise

    def wait_state(self, entity_id: str, pred=lambda s: True, timeout: float = 30) -> dict:
        return wait_until(lambda: (s := self.state(entity_id)) is not None and pred(s) and s,
                          timeout, 0.1, f"{entity_id} predicate")

    def wait_for(self, pred, timeout: float = 30) -> dict:
        """Wait for any state object in /api/states satisfying pred; return it."""
        return wait_until(lambda: next((s for s in self.states() if pred(s)), None),
                          timeout, 0.2, "matching state")

    def call_service(self, domain: str, service: str, data: dict | None = None):
        return self.api("POST", f"/api/services/{domain}/{service}", data or {})

    # -- websocket
    def ws(self, msg_type: str, **kwargs):
        """One websocket command; returns its result (raises on error)."""
        return self.ws_many([{"type": msg_type, **kwargs}])[0]

    def ws_many(self, messages: list[dict]) -> list:
        """Websocket commands in order, with the venv's aiohttp; their results."""
        python = os.path.join(self.venv, "bin", "python")
        url = f"ws://127.0.0.1:{self.port}/api/websocket"
        done = subprocess.run(
            [python, "-c", WS_CLIENT, url],
            input=json.dumps({"token": self.token, "messages": messages}),
            capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"websocket {[m['type'] for m in messages]}: {done.stderr.strip()}")
        return json.loads(done.stdout)

    def device_registry(self) -> list[dict]:
        return self.ws("config/device_registry/list")

    def entity_registry(self) -> list[dict]:
        return self.ws("config/entity_registry/list")

    def entity_id_for(self, platform: str, unique_id: str) -> str | None:
        for e in self.entity_registry():
            if e["platform"] == platform and e.get("unique_id") == unique_id:
                return e["entity_id"]
        return None

    def log_problems(self) -> list[str]:
        """ERROR/WARNING lines of home-assistant.log (for diagnosis)."""
        try:
            with open(self.log_file, errors="replace") as f:
                return [l.rstrip() for l in f if " ERROR " in l or " WARNING " in l]
        except FileNotFoundError:
            return []


# --------------------------------------------------------------------------
# venv

def make_venv(venv: str = DEFAULT_VENV, python: str = "python3") -> float:
    """Create the venv: homeassistant + the integrations' pinned requirements,
    constrained by HA's own package_constraints.txt (without it pip resolves
    newer bleak/habluetooth/anyio/... than HA 2024.3.3 was released with)."""
    t0 = time.monotonic()
    ready = os.path.join(venv, ".janitoo-ready")
    wanted = json.dumps([HA_VERSION, EXTRA_REQUIREMENTS])
    if os.path.exists(ready) and open(ready).read() == wanted:
        return 0.0  # made already, with the same requirements
    # A venv half made (interrupted) or of other requirements is made again.
    shutil.rmtree(venv, ignore_errors=True)
    pip = os.path.join(venv, "bin", "pip")
    subprocess.run([python, "-m", "venv", venv], check=True)
    subprocess.run([pip, "install", "-q", "--upgrade", "pip"], check=True)
    with tempfile.TemporaryDirectory() as td:
        subprocess.run([pip, "download", "-q", "--no-deps", "-d", td,
                        f"homeassistant=={HA_VERSION}"], check=True)
        whl = next(os.path.join(td, n) for n in os.listdir(td) if n.endswith(".whl"))
        import zipfile
        with zipfile.ZipFile(whl) as z:
            cons = os.path.join(td, "constraints.txt")
            with open(cons, "wb") as f:
                f.write(z.read("homeassistant/package_constraints.txt"))
        subprocess.run([pip, "install", "-q", "-c", cons, whl, *EXTRA_REQUIREMENTS],
                       check=True)
    with open(ready, "w") as f:
        f.write(wanted)
    return time.monotonic() - t0


# --------------------------------------------------------------------------
# self-test: mosquitto + HA + MQTT discovery of a sensor with availability

def selftest(venv: str, mqtt_port: int, keep: str | None) -> int:
    work = keep or tempfile.mkdtemp(prefix="ha-harness-")
    os.makedirs(work, exist_ok=True)
    broker = Mosquitto(mqtt_port, work)
    ha = HomeAssistant(os.path.join(work, "config"), venv=venv)
    checks: list[tuple[str, bool, str]] = []

    def check(name, ok, detail=""):
        checks.append((name, bool(ok), detail))
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}", flush=True)

    try:
        broker.start()
        ha.write_config()
        t = ha.start()
        check("hass answers http", True, f"{t:.1f}s after spawn")
        ha.onboard()
        check("onboarded", ha.onboarding_status() in ({}, {"user": True,
              "core_config": True, "analytics": True, "integration": True}),
              f"{ha.timings['onboard']:.2f}s")
        cfg = ha.wait_running()
        check("core RUNNING", cfg["state"] == "RUNNING", f"version {cfg['version']}")
        entry = ha.add_mqtt("127.0.0.1", mqtt_port)
        check("mqtt entry loaded", entry["state"] == "loaded",
              f"{ha.timings['mqtt_flow']:.2f}s")

        disc = {
            "name": "Temperature",
            "state_topic": "janitoo/test/temp/state",
            "unique_id": "janitoo_test_node_temp",
            "device_class": "temperature",
            "unit_of_measurement": "°C",
            "value_template": "{{ value_json.data }}",
            "availability": [{"topic": "janitoo/test/availability/x"}],
            "device": {"identifiers": ["janitoo_test_node"], "name": "Test node",
                       "manufacturer": "janitoo-rs", "model": "harness"},
        }
        t0 = time.monotonic()
        broker.pub("janitoo/test/availability/x", "online")
        broker.pub("janitoo/test/temp/state", json.dumps({"data": 21.5}))
        broker.pub("homeassistant/sensor/test_node/temp/config", json.dumps(disc))
        eid = wait_until(lambda: ha.entity_id_for("mqtt", disc["unique_id"]), 30, 0.1,
                         "entity registered")
        s = ha.wait_state(eid, lambda s: s["state"] == "21.5", 30)
        dt = time.monotonic() - t0
        ha.timings["discovery_to_state"] = dt
        check("discovered sensor state 21.5 °C",
              s["attributes"].get("unit_of_measurement") == "°C"
              and s["attributes"].get("device_class") == "temperature",
              f"{eid} in {dt:.2f}s")
        check("listed by /api/states", any(x["entity_id"] == eid for x in ha.states()))
        devs = [d for d in ha.device_registry()
                if ["mqtt", "janitoo_test_node"] in d["identifiers"]]
        check("device in registry", len(devs) == 1,
              devs[0]["name"] if devs else "")

        t0 = time.monotonic()
        broker.pub("janitoo/test/temp/state", json.dumps({"data": 22.0}))
        ha.wait_state(eid, lambda s: s["state"] == "22.0", 10)
        check("state update", True, f"{time.monotonic() - t0:.2f}s")

        t0 = time.monotonic()
        broker.pub("janitoo/test/availability/x", "offline")
        ha.wait_state(eid, lambda s: s["state"] == "unavailable", 10)
        check("offline -> unavailable", True, f"{time.monotonic() - t0:.2f}s")

        # second discovery, once MQTT has settled (the first one above also
        # pays the client's initial subscribe/discovery cooldowns, 1 s + 2 s)
        sw = {"name": "Relay", "unique_id": "janitoo_test_node_relay",
              "command_topic": "janitoo/test/relay/set",
              "state_topic": "janitoo/test/relay/state",
              "device": {"identifiers": ["janitoo_test_node"]}}
        t0 = time.monotonic()
        broker.pub("homeassistant/switch/test_node/relay/config", json.dumps(sw))
        sid = wait_until(lambda: ha.entity_id_for("mqtt", sw["unique_id"]), 30, 0.05,
                         "switch registered")
        ha.wait_state(sid, lambda s: s["state"] != "unavailable", 10)
        dt = time.monotonic() - t0
        ha.timings["discovery_to_state_settled"] = dt
        check("switch discovered", True, f"{sid} in {dt:.2f}s")

        # service call through REST -> command published on MQTT
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port),
                                "-t", sw["command_topic"], "-C", "1", "-W", "10"],
                               stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # let mosquitto_sub subscribe
        ha.call_service("switch", "turn_on", {"entity_id": sid})
        out, _ = sub.communicate(timeout=15)
        check("switch.turn_on publishes ON", out.strip() == "ON", repr(out.strip()))
        broker.pub(sw["state_topic"], "ON")
        ha.wait_state(sid, lambda s: s["state"] == "on", 10)
        check("switch state on", True)
    except Exception as e:  # noqa: BLE001
        check("exception", False, repr(e))
    finally:
        t0 = time.monotonic()
        rc = ha.stop()
        check("hass stopped by SIGTERM", rc == 0, f"rc={rc} in {time.monotonic()-t0:.1f}s")
        broker.stop()
        problems = ha.log_problems()
        if problems:
            print(f"--- {len(problems)} WARNING/ERROR lines in {ha.log_file}:")
            for line in problems[:40]:
                print("   ", line[:300])
        print("timings:", json.dumps({k: round(v, 2) for k, v in ha.timings.items()}))
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept", work)
    failed = sum(1 for _, ok, _ in checks if not ok)
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


# --------------------------------------------------------------------------
# CLI

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--venv", default=DEFAULT_VENV)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("make-venv", help="create the HA venv (~1 min, ~700 MB)")
    st = sub.add_parser("selftest", help="mosquitto + HA + MQTT discovery end to end")
    st.add_argument("--mqtt-port", type=int, default=18830)
    st.add_argument("--keep", help="work dir to keep (config, logs)")
    up = sub.add_parser("up", help="start HA in the background, onboard, add MQTT")
    up.add_argument("--config", required=True)
    up.add_argument("--port", type=int, default=0)
    up.add_argument("--mqtt-port", type=int, help="add the MQTT integration for this broker")
    up.add_argument("--mqtt-host", default="127.0.0.1")
    for name in ("down", "states", "devices", "entities", "entries"):
        sp = sub.add_parser(name)
        sp.add_argument("--config", required=True)
    c = sub.add_parser("call", help="call a service: call --config D switch.turn_on '{...}'")
    c.add_argument("--config", required=True)
    c.add_argument("service")
    c.add_argument("data", nargs="?", default="{}")
    w = sub.add_parser("wait", help="wait for an entity state")
    w.add_argument("--config", required=True)
    w.add_argument("entity_id")
    w.add_argument("--state", help="expected state (default: entity exists)")
    w.add_argument("--timeout", type=float, default=30)
    a = p.parse_args(argv)

    if a.cmd == "make-venv":
        print(f"venv ready in {make_venv(a.venv):.0f}s: {a.venv}")
        return 0
    if a.cmd == "selftest":
        return selftest(a.venv, a.mqtt_port, a.keep)
    if a.cmd == "up":
        ha = HomeAssistant(a.config, a.port or None, a.venv)
        if os.path.exists(ha.state_file):  # restart: keep port and long-lived token
            old = HomeAssistant.from_state(a.config)
            if old.alive():
                raise RuntimeError(f"hass already running (pid {old.pid})")
            ha.port, ha.token = old.port, old.token
        ha.write_config()
        ha.start()
        try:
            if ha.onboarding_status().get("user") is False:
                ha.onboard()
            elif not ha.token:
                raise RuntimeError("config dir already onboarded and no token: "
                                   "use a fresh --config directory")
            ha.wait_running()
            if a.mqtt_port and not ha.config_entries("mqtt"):
                ha.add_mqtt(a.mqtt_host, a.mqtt_port)
        except BaseException:
            ha.stop()
            raise
        ha.save_state()
        print(json.dumps({"pid": ha.pid, "url": ha.url, "token": ha.token,
                          "timings": ha.timings}))
        return 0
    ha = HomeAssistant.from_state(a.config)
    if a.cmd == "down":
        ha.stop()
        return 0
    out = {"states": ha.states, "devices": ha.device_registry,
           "entities": ha.entity_registry, "entries": ha.config_entries}.get(a.cmd)
    if out:
        print(json.dumps(out(), indent=1, ensure_ascii=False))
        return 0
    if a.cmd == "call":
        domain, service = a.service.split(".", 1)
        print(json.dumps(ha.call_service(domain, service, json.loads(a.data)), indent=1))
        return 0
    if a.cmd == "wait":
        s = ha.wait_state(a.entity_id, (lambda s: s["state"] == a.state) if a.state
                          else (lambda s: True), a.timeout)
        print(json.dumps(s, indent=1, ensure_ascii=False))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
