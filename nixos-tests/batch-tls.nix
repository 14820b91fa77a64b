# NixOS VM test of the batch topology over TLS (topologies/batch-tls.json, script batch.py).
{ pkgs, wclab, oracle }:
import ./lib.nix { inherit pkgs wclab oracle; } "batch-tls"
