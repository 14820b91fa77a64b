# NixOS VM test of the raft topology (topologies/raft.json, script raft.py).
{ pkgs, wclab, oracle }:
import ./lib.nix { inherit pkgs wclab oracle; } "raft"
