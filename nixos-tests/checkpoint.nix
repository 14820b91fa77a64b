# NixOS VM test of the checkpoint topology (topologies/checkpoint.json, script checkpoint.py).
{ pkgs, wclab, oracle }:
import ./lib.nix { inherit pkgs wclab oracle; } "checkpoint"
