# Type hints for a test script, as nixpkgs' NixOS test driver prepends its
# own (nixos/lib/test-script-prepend.py, and "<node>: Machine" per node)
# before it runs `mypy --no-implicit-optional` on the script: scripts/check-nix
# does the same with this file. Machine has the signatures of nixpkgs'
# test_driver.machine, but only for the part of the API that the scripts
# may use (issue 6), so a call to anything else is a type error here too.
from typing import Callable, List


class Machine:
    name: str

    def start(self, allow_reboot: bool = False) -> None: ...
    def crash(self) -> None: ...
    def block(self) -> None: ...
    def unblock(self) -> None: ...
    def succeed(self, *commands: str, timeout: int | None = None) -> str:
        raise NotImplementedError("type information only")

    def fail(self, *commands: str, timeout: int | None = None) -> str:
        raise NotImplementedError("type information only")

    def wait_for_unit(self, unit: str, user: str | None = None, timeout: int = 900) -> None: ...
    def wait_for_open_port(self, port: int, addr: str = "localhost", timeout: int = 900) -> None: ...


start_all: Callable[[], None]
machines: List[Machine]
