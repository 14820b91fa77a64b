# NixOS VM test of the streaming topology (topologies/streaming.json, script streaming.py).
{ pkgs, wclab, oracle }:
import ./lib.nix { inherit pkgs wclab oracle; } "streaming"
