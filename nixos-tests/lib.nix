# Builds one NixOS VM test from a topology described in
# topologies/<name>.json, the same file that the local network-namespace
# runner (local/driver.py) reads, so that the two cannot drift apart.
#
# Services, by the name used in the JSON, and the systemd unit each becomes
# (the local runner calls its processes by the same unit names):
#   "redis"       wclab-redis.service   redis-server, state in /var/lib/wclab-redis
#   "worker"      wclab-worker.service  wclab worker --job <job> <worker.args>, with
#                                       <worker.env> in its environment, Restart=always
#   "redis-raft"  PENDING: the Raft replication component is not built yet.
#
# The test script is prelude.py followed by <name>.py, after two constants:
# TOPOLOGY (the parsed JSON) and SHARED (a directory every node sees at the
# same path: /tmp/shared in NixOS VMs).
#
# Only builtins are used here, so that scripts/check-nix can evaluate this
# file offline against a stub `pkgs`.
{ pkgs, wclab, oracle }:
name:
let
  topologyFile = ./topologies + "/${name}.json";
  topology = builtins.fromJSON (builtins.readFile topologyFile);
  inherit (topology) password job;
  port = topology.redis.port;
  nodeNames = builtins.attrNames topology.nodes; # sorted, like the NixOS test framework numbers them
  has = service: node: builtins.elem service topology.nodes.${node}.services;
  redisNodes = builtins.filter (has "redis") nodeNames;
  redisUrl =
    if redisNodes == [ ] then null
    else "redis://:${password}@${builtins.head redisNodes}:${toString port}";
  concatLines = builtins.concatStringsSep "\n";

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
    ] ++ topology.redis.config) + "\n");

  redisService = {
    description = "Redis for wclab (${name})";
    wantedBy = [ "multi-user.target" ];
    after = [ "network.target" ];
    unitConfig.StartLimitIntervalSec = 0;
    serviceConfig = {
      ExecStart = "${pkgs.redis}/bin/redis-server ${redisConf}";
      StateDirectory = "wclab-redis";
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
    } // topology.worker.env or { };
    unitConfig.StartLimitIntervalSec = 0;
    serviceConfig = {
      ExecStart = builtins.concatStringsSep " " ([ "${wclab}/bin/wclab" "worker" "--job" job ] ++ topology.worker.args);
      Restart = "always";
      RestartSec = 1;
    };
  };

  units = node: builtins.listToAttrs (map
    (service:
      if service == "redis" then { name = "wclab-redis"; value = redisService; }
      else if service == "worker" then { name = "wclab-worker"; value = workerService; }
      else if service == "redis-raft" then throw "nixos-tests/${name}: PENDING: ${topology.pending or "the Raft component is not built yet"}"
      else throw "nixos-tests/${name}: node ${node}: unknown service ${service}")
    topology.nodes.${node}.services);

  nodeModule = node: _spec: {
    virtualisation.memorySize = 1024;
    virtualisation.cores = 2;
    networking.firewall.allowedTCPPorts = if has "redis" node then [ port ] else [ ];
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
    "SHARED = \"/tmp/shared\""
    (builtins.readFile ./prelude.py)
    (builtins.readFile (./. + "/${name}.py"))
  ];
}
