# NixOS VM test of the batch topology (topologies/batch.json, script batch.py).
{ pkgs, wclab, oracle }:
import ./lib.nix { inherit pkgs wclab oracle; } "batch"
