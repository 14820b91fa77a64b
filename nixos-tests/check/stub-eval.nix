# Evaluates flake.nix offline, against a stub of nixpkgs that has only the
# attributes the flake and nixos-tests/lib.nix use, and returns what
# scripts/check-nix compares with the topologies and the local runner:
# the checks' names, each test's nodes, units and testScript, the packages.
# It proves the Nix code evaluates and agrees with the JSON and the local
# driver; it cannot prove that nixpkgs accepts it (that needs nixpkgs).
let
  root = ../..;
  stubDrv = name: "/nix/store/00000000000000000000000000000000-${name}";
  lib = {
    genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    removeSuffix = suffix: s:
      let
        ls = builtins.stringLength s;
        lx = builtins.stringLength suffix;
      in
      if ls >= lx && builtins.substring (ls - lx) lx s == suffix then builtins.substring 0 (ls - lx) s else s;
    hasSuffix = suffix: s:
      let
        ls = builtins.stringLength s;
        lx = builtins.stringLength suffix;
      in
      ls >= lx && builtins.substring (ls - lx) lx s == suffix;
    filterAttrs = pred: set: builtins.listToAttrs (builtins.concatMap (n: if pred n set.${n} then [{ name = n; value = set.${n}; }] else [ ]) (builtins.attrNames set));
    importTOML = path: builtins.fromTOML (builtins.readFile path);
    fileset = {
      unions = paths: map toString paths;
      toSource = { root, fileset }: { inherit fileset; root = toString root; };
    };
    # As nixpkgs has them: a word of only these characters stays bare.
    escapeShellArg = arg:
      let
        string = toString arg;
      in
      if builtins.match "[[:alnum:],._+:@%/-]+" string == null
      then "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] string}'"
      else string;
    escapeShellArgs = args: builtins.concatStringsSep " " (map lib.escapeShellArg args);
    makeBinPath = paths: builtins.concatStringsSep ":" (map (p: "${p}/bin") paths);
    licenses = { mit = "mit"; asl20 = "asl20"; };
    platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
  };
  pkgsFor = system: rec {
    inherit lib;
    stdenv.hostPlatform.system = system;
    rustPlatform.buildRustPackage = args: args // { outPath = stubDrv "wclab"; type = "derivation"; };
    writeShellApplication = args: args // { outPath = stubDrv args.name; };
    writeText = name: text: "<file ${name}>${text}</file>"; # so that the contents can be compared
    mkShell = args: args;
    testers.runNixOSTest = test: test;
    redis = stubDrv "redis";
    makeWrapper = stubDrv "make-wrapper-hook";
    cargo = "cargo";
    rustc = "rustc";
    clippy = "clippy";
    rustfmt = "rustfmt";
    rust-analyzer = "rust-analyzer";
    just = "just";
    python3.withPackages = f: "python3-with-${builtins.concatStringsSep "-" (f { redis = "redis"; })}";
    iproute2 = "iproute2";
    util-linux = "util-linux";
    inetutils = "inetutils";
    coreutils = "coreutils";
    findutils = "findutils";
    gnugrep = "gnugrep";
    gawk = "gawk";
    nixpkgs-fmt = "nixpkgs-fmt";
  };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] pkgsFor;
  };
  flake = import (root + "/flake.nix");
  outputs = flake.outputs { self = outputs // { outPath = toString root; }; inherit nixpkgs; };
  summarize = test: {
    inherit (test) name testScript;
    nodes = builtins.mapAttrs
      (_: node: {
        units = builtins.mapAttrs
          (_: unit: {
            inherit (unit.serviceConfig) ExecStart Restart;
            StateDirectory = unit.serviceConfig.StateDirectory or null;
            environment = unit.environment or { };
            path = unit.path or [ ];
          })
          node.systemd.services;
        ports = node.networking.firewall.allowedTCPPorts;
        sysctl = node.boot.kernel.sysctl;
      })
      test.nodes;
  };
in
{
  inputs = flake.inputs;
  checks = builtins.mapAttrs (_: summarize) outputs.checks.x86_64-linux;
  packages = builtins.mapAttrs (_: builtins.attrNames) outputs.packages;
  devShells = builtins.mapAttrs (_: builtins.attrNames) outputs.devShells;
  devShellPackages = outputs.devShells.x86_64-linux.default.packages;
  lockFile = toString outputs.packages.x86_64-linux.wclab.cargoLock.lockFile;
  wclab = {
    inherit (outputs.packages.x86_64-linux.wclab) nativeBuildInputs postInstall;
  };
  wclabRaft = {
    inherit (outputs.packages.x86_64-linux.wclab-raft) text;
    runtimeInputs = map toString outputs.packages.x86_64-linux.wclab-raft.runtimeInputs;
  };
}
