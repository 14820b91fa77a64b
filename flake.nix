{
  description = "wclab: a distributed word count on Redis, and the labs of a cloud-computing course";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # Every topology described in nixos-tests/topologies/<name>.json
      # becomes checks.x86_64-linux.<name>, a NixOS VM test built by
      # nixos-tests/<name>.nix.
      topologyNames = map (file: nixpkgs.lib.removeSuffix ".json" file)
        (builtins.attrNames (nixpkgs.lib.filterAttrs (file: type: type == "regular" && nixpkgs.lib.hasSuffix ".json" file)
          (builtins.readDir ./nixos-tests/topologies)));
    in
    {
      packages = forAllSystems (pkgs: rec {
        # The wclab binary, built from the Cargo workspace: one executable
        # for the coordinator (run, submit, top), the worker, the generator,
        # the streaming lab and the Raft component (`wclab raft node`, a
        # sidecar that starts its own redis-server). It finds redis-server
        # on PATH, so the wrapper puts nixpkgs' redis at the end of PATH.
        wclab = pkgs.rustPlatform.buildRustPackage {
          pname = "wclab";
          inherit ((pkgs.lib.importTOML ./Cargo.toml).workspace.package) version;
          src = pkgs.lib.fileset.toSource {
            root = ./.;
            fileset = pkgs.lib.fileset.unions [ ./Cargo.toml ./Cargo.lock ./crates ./lua ];
          };
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "--bin" "wclab" ];
          nativeBuildInputs = [ pkgs.makeWrapper ];
          postInstall = ''
            wrapProgram $out/bin/wclab --suffix PATH : ${pkgs.lib.makeBinPath [ pkgs.redis ]}
          '';
          # The integration tests start redis-server, kill processes and drop
          # root with setpriv: they run in CI (`just test`), not in the sandbox.
          doCheck = false;
          meta = {
            description = "Distributed word count on Redis, and the labs of a cloud-computing course";
            license = with pkgs.lib.licenses; [ mit asl20 ];
            mainProgram = "wclab";
            platforms = pkgs.lib.platforms.linux;
          };
        };

        # scripts/oracle-coreutils: the expected `word<TAB>count` output of
        # `wclab ... -o FILE`, with coreutils only (used by the VM tests).
        oracle-coreutils = pkgs.writeShellApplication {
          name = "oracle-coreutils";
          runtimeInputs = with pkgs; [ coreutils findutils gnugrep gawk ];
          text = builtins.readFile ./scripts/oracle-coreutils;
        };
        # The Raft replication component for Redis (lab 4b) on its own:
        # `wclab-raft --id N --listen HOST:PORT --dir DIR` is `wclab raft
        # node ...`, one replica (sidecar + its redis-server). The same
        # program is in `wclab` (`wclab raft node|init|join|status`).
        wclab-raft = pkgs.writeShellApplication {
          name = "wclab-raft";
          runtimeInputs = [ wclab pkgs.redis ];
          text = ''exec wclab raft node "$@"'';
        };
        default = wclab;
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            cargo
            rustc
            clippy
            rustfmt
            rust-analyzer
            redis # redis-server and redis-cli (Debian's redis-server and redis-tools)
            just
            (python3.withPackages (ps: [ ps.redis ])) # nixos-tests/local/driver.py, bench/ (the seed in Python)
            iproute2 # ip netns, veth, bridge: `just hosts-test`
            util-linux # unshare (hosts-test), setpriv (a test that drops root)
            inetutils # hostname (hosts-test)
            coreutils
            findutils
            gnugrep
            gawk # scripts/oracle-coreutils
            nixpkgs-fmt
          ];
        };
      });

      checks.x86_64-linux =
        let
          pkgs = nixpkgs.legacyPackages.x86_64-linux;
          inherit (self.packages.x86_64-linux) wclab oracle-coreutils;
        in
        nixpkgs.lib.genAttrs topologyNames (name:
          import (./nixos-tests + "/${name}.nix") { inherit pkgs wclab; oracle = oracle-coreutils; });

      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);
    };
}
