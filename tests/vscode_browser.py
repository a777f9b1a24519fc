"""A real VS Code (code-server) with only our packaged extension, driven by Debian's Chromium.

`CodeServer` prepares a fresh user-data and extensions folder, installs the `.vsix`, puts
the settings a user would set in User settings and serves the workspace; `Workbench` is
what a user does in the page (command palette, Chat view, dialogs), saving a screenshot
per step. Selectors are VS Code 1.139's (see /work/shared/reference/real-parts.md).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHAT_INPUT = ".interactive-input-part .interactive-input-editor"
CHAT_ITEMS = ".interactive-item-container"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CodeServer:
    def __init__(self, executable: Path, root: Path, vsix: Path, settings: dict[str, Any], env: dict[str, str]):
        self.root = root
        self.workspace = root / "workspace"
        self._data = root / "user-data"
        self._extensions = root / "extensions"
        for folder in (self.workspace, self._data / "User", self._extensions):
            folder.mkdir(parents=True)
        (self._data / "User" / "settings.json").write_text(json.dumps(settings, indent=2))
        self._executable = str(executable)
        self._common = ["--user-data-dir", str(self._data), "--extensions-dir", str(self._extensions)]
        self._install(vsix)
        self.port = _free_port()
        self._log = (root / "code-server.log").open("wb")
        self.process = subprocess.Popen(
            [self._executable, *self._common, "--auth", "none", "--bind-addr", f"127.0.0.1:{self.port}",
             "--disable-workspace-trust", "--disable-telemetry", "--disable-update-check", str(self.workspace)],
            stdout=self._log, stderr=subprocess.STDOUT,
            # An empty gallery: nothing tries to reach a marketplace.
            env={**os.environ, **env, "EXTENSIONS_GALLERY": "{}"},
            start_new_session=True,
        )
        wait_until(self._listening, 60, "code-server to listen")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?folder={self.workspace}"

    def _install(self, vsix: Path) -> None:
        subprocess.run([self._executable, *self._common, "--install-extension", str(vsix)], check=True, capture_output=True, timeout=120)

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def extension_log(self) -> str:
        logs = sorted(self._data.glob("logs/*/exthost*/ollama-chatd.ollama-chat/*.log"))
        return "\n".join(log.read_text(errors="replace") for log in logs)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()
        self._log.close()


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `condition` until it returns something truthy (page state has no events to await)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (StaleElementReferenceException, WebDriverException):
            value = None  # the page re-rendered under us: look again
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(interval)


class Workbench:
    """The VS Code page, as a user sees and drives it."""

    def __init__(self, screenshots: Path):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.screenshots = screenshots
        screenshots.mkdir(parents=True, exist_ok=True)
        self._shots = 0

    def open(self, url: str) -> None:
        self.driver.get(url)
        wait_until(lambda: self.find(".monaco-workbench .part.statusbar"), 60, "the workbench")

    def close(self) -> None:
        self.driver.quit()

    # -- looking -----------------------------------------------------------------------

    def find(self, css: str) -> WebElement | None:
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found else None

    def texts(self, css: str) -> list[str]:
        return [element.text for element in self.driver.find_elements(By.CSS_SELECTOR, css)]

    def status_bar(self) -> list[str]:
        return [label or "" for label in self.attributes(".statusbar-item", "aria-label")] + self.texts(".statusbar-item")

    def attributes(self, css: str, name: str) -> list[str | None]:
        return [element.get_attribute(name) for element in self.driver.find_elements(By.CSS_SELECTOR, css)]

    def shot(self, name: str) -> Path:
        self._shots += 1
        path = self.screenshots / f"{self._shots:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def wait_or_show(self, condition: Callable[[], T], timeout: float, what: str, shot: str,
                     seen: Callable[[], object] | None = None, interval: float = 0.1) -> T:
        """`wait_until`, failing with a screenshot named `shot` and, if given, what the page
        showed instead (`seen()`), so a failure in CI can be read afterwards."""
        try:
            return wait_until(condition, timeout, what, interval)
        except TimeoutError as timeout_error:
            instead = f"; the page showed {seen()}" if seen else ""
            raise AssertionError(f"{timeout_error}{instead} (see {self.shot(shot)})") from None

    # -- doing ---------------------------------------------------------------------------

    def keys(self, *keys: str) -> None:
        webdriver.ActionChains(self.driver).send_keys(*keys).perform()

    def chord(self, *modifiers_then_key: str) -> None:
        *modifiers, key = modifiers_then_key
        actions = webdriver.ActionChains(self.driver)
        for modifier in modifiers:
            actions.key_down(modifier)
        actions.send_keys(key)
        for modifier in reversed(modifiers):
            actions.key_up(modifier)
        actions.perform()

    def run_command(self, title: str) -> None:
        """Ctrl+Shift+P, the command's title, Enter."""
        self.chord(Keys.CONTROL, Keys.SHIFT, "p")
        box = wait_until(lambda: self.find(".quick-input-widget .quick-input-box input"), 10, "the command palette")
        # Type the whole query, ">" included: whatever the box held (a leftover query, or the
        # palette opened as Quick Open without its ">"), it then lists commands.
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(">" + title)
        wait_until(
            lambda: any(title.lower() in t.lower() for t in self.texts(".quick-input-list .monaco-list-row")),
            10, f"command {title!r}",
        )
        box.send_keys(Keys.ENTER)

    def click(self, css: str, what: str, timeout: float = 10) -> WebElement:
        element = wait_until(lambda: self._displayed(css), timeout, what)
        element.click()
        return element

    def _displayed(self, css: str) -> WebElement | None:
        return next((e for e in self.driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None)

    def click_text(self, css: str, text: str, timeout: float = 10) -> WebElement:
        """Click the first visible element matching `css` whose text contains `text`."""

        def match() -> WebElement | None:
            return next((e for e in self.driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed() and text in e.text), None)

        element = wait_until(match, timeout, f"{text!r} in {css}")
        element.click()
        return element

    # -- the Chat view ----------------------------------------------------------------

    def chat_send(self, message: str) -> None:
        editor = self.click(CHAT_INPUT, "the chat input")
        editor.click()
        self.keys(message)
        self.keys(Keys.ENTER)

    def chat_replies(self) -> list[str]:
        return self.texts(f"{CHAT_ITEMS}.interactive-response")

    def new_chat(self) -> None:
        self.run_command("Chat: New Chat")
