# Builds one NixOS VM test from a topology described in
# topologies/<name>.json, the same file that the local network-namespace
# runner (local/driver.py) reads, so that the two cannot drift apart.
#
# Services, by the name used in the JSON, and the systemd unit each becomes
# (the local runner calls its processes by the same unit names):
#   "redis"       wclab-redis.service       redis-server on <redis.port> with
#                                           <redis.config>, state in /var/lib/wclab-redis
#   "redis-raft"  wclab-redis-raft.service  wclab raft node --id <node's raft_id>
#                                           --listen 0.0.0.0:<redis.port> --dir
#                                           /var/lib/wclab-raft <raft.args>: the Raft
#                                           sidecar, which starts its own redis-server
#                                           (persistence off); WCLAB_RAFT_PASSWORD
#   "worker"      wclab-worker.service      wclab worker --job <job> <worker.args>, with
#                                           <worker.env> in its environment
# All are Restart=always. <redis.port> is the port clients use: Redis's own,
# or the sidecar's. Workers get WCLAB_REDIS_URL: the "redis" node, or every
# "redis-raft" node (redis://:PASSWORD@raft1:PORT,raft2:PORT,...).
#
# With "tls": true, Redis speaks TLS only: its config names the certificates
# under @SHARED@/tls (made by the test script with `wclab tls-certs` once the
# nodes are up; Redis restarts until they exist), clients use rediss:// and
# workers trust that CA alone (WCLAB_TLS_CA).
#
# The test script is prelude.py followed by <script>.py (default <name>),
# after two constants:
# TOPOLOGY (the parsed JSON) and SHARED (a directory every node sees at the
# same path: /tmp/shared in NixOS VMs).
#
# Only builtins and pkgs.lib.escapeShellArgs are used here, so that
# scripts/check-nix can evaluate this file offline against a stub `pkgs`.
{ pkgs, wclab, oracle }:
name:
let
  topologyFile = ./topologies + "/${name}.json";
  topology = builtins.fromJSON (builtins.readFile topologyFile);
  inherit (topology) password job;
  shared = "/tmp/shared"; # SHARED of the test script
  atShared = builtins.replaceStrings [ "@SHARED@" ] [ shared ];
  tls = topology.tls or false;
  scheme = if tls then "rediss" else "redis";
  script = topology.script or name;
  port = topology.redis.port;
  nodeNames = builtins.attrNames topology.nodes; # sorted, like the NixOS test framework numbers them
  has = service: node: builtins.elem service topology.nodes.${node}.services;
  servesRedis = node: has "redis" node || has "redis-raft" node;
  redisNodes = builtins.filter (has "redis") nodeNames;
  raftNodes = builtins.filter (has "redis-raft") nodeNames;
  redisUrl =
    if redisNodes != [ ] then "${scheme}://:${password}@${builtins.head redisNodes}:${toString port}"
    else if raftNodes != [ ] then "${scheme}://:${password}@${builtins.concatStringsSep "," (map (n: "${n}:${toString port}") raftNodes)}"
    else null;
  concatLines = builtins.concatStringsSep "\n";
  # systemd splits ExecStart like a shell would for these arguments (no
  # quotes, `$` or `%` in them: nothing for systemd to expand).
  execStart = argv: pkgs.lib.escapeShellArgs argv;

  # The NixOS test framework gives node number i (1-based, in attrNames
  # order) the address 192.168.1.i on eth1; the JSON must say the same.
  numbered = builtins.genList (i: { node = builtins.elemAt nodeNames i; address = "192.168.1.${toString (i + 1)}"; }) (builtins.length nodeNames);
  wrongAddresses = builtins.filter (n: topology.nodes.${n.node}.address != n.address) numbered;
  checkedNodes =
    if wrongAddresses != [ ] then
      throw "${toString topologyFile}: node ${(builtins.head wrongAddresses).node} must have address ${(builtins.head wrongAddresses).address} (the NixOS test framework numbers nodes in sorted order)"
    else topology.nodes;

  redisConf = pkgs.writeText "wclab-redis-${name}.conf" (concatLines
    ([
      "port ${toString port}"
      "requirepass ${password}"
      "dir /var/lib/wclab-redis"
      "logfile \"\""
    ] ++ map atShared (topology.redis.config or [ ])) + "\n");

  redisService = {
    description = "Redis for wclab (${name})";
    wantedBy = [ "multi-user.target" ];
    after = [ "network.target" ];
    unitConfig.StartLimitIntervalSec = 0;
    serviceConfig = {
      ExecStart = execStart [ "${pkgs.redis}/bin/redis-server" "${redisConf}" ];
      StateDirectory = "wclab-redis";
      Restart = "always";
      RestartSec = 1;
    };
  };

  raftService = node:
    let
      id = topology.nodes.${node}.raft_id or (throw "nixos-tests/${name}: node ${node} runs redis-raft but has no raft_id");
    in
    {
      description = "Raft-replicated Redis for wclab, node ${toString id} (${name})";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      # The sidecar starts its own redis-server, found on PATH; a unit does
      # not see environment.systemPackages.
      path = [ pkgs.redis ];
      environment = {
        WCLAB_RAFT_PASSWORD = password;
        WCLAB_LOG = "info";
      };
      unitConfig.StartLimitIntervalSec = 0;
      serviceConfig = {
        ExecStart = execStart ([ "${wclab}/bin/wclab" "raft" "node" "--id" (toString id) "--listen" "0.0.0.0:${toString port}" "--dir" "/var/lib/wclab-raft" ] ++ topology.raft.args or [ ]);
        StateDirectory = "wclab-raft";
        Restart = "always";
        RestartSec = 1;
      };
    };

  workerService = {
    description = "wclab worker for job ${job} (${name})";
    wantedBy = [ "multi-user.target" ];
    wants = [ "network-online.target" ];
    after = [ "network-online.target" ];
    environment = {
      WCLAB_REDIS_URL = redisUrl;
      WCLAB_LOG = "info";
    } // (if tls then { WCLAB_TLS_CA = "${shared}/tls/ca.pem"; } else { })
    // topology.worker.env or { };
    unitConfig.StartLimitIntervalSec = 0;
    serviceConfig = {
      ExecStart = execStart ([ "${wclab}/bin/wclab" "worker" "--job" job ] ++ topology.worker.args);
      Restart = "always";
      RestartSec = 1;
    };
  };

  units = node: builtins.listToAttrs (map
    (service:
      if service == "redis" then { name = "wclab-redis"; value = redisService; }
      else if service == "redis-raft" then { name = "wclab-redis-raft"; value = raftService node; }
      else if service == "worker" then { name = "wclab-worker"; value = workerService; }
      else throw "nixos-tests/${name}: node ${node}: unknown service ${service}")
    topology.nodes.${node}.services);

  nodeModule = node: _spec: {
    virtualisation.memorySize = 1024;
    virtualisation.cores = 2;
    networking.firewall.allowedTCPPorts = if servesRedis node then [ port ] else [ ];
    # What Redis asks for (its BGSAVE forks must not fail for lack of memory).
    boot.kernel.sysctl = if servesRedis node then { "vm.overcommit_memory" = 1; } else { };
    environment.systemPackages = [ wclab oracle pkgs.redis ];
    systemd.services = units node;
  };
in
pkgs.testers.runNixOSTest {
  name = "wclab-${name}";
  nodes = builtins.mapAttrs nodeModule checkedNodes;
  testScript = concatLines [
    "import json"
    "TOPOLOGY = json.loads(${builtins.toJSON (builtins.readFile topologyFile)})"
    "SHARED = \"${shared}\""
    (builtins.readFile ./prelude.py)
    (builtins.readFile (./. + "/${script}.py"))
  ];
}
