# A configuration (broker properties with immutable revisions) and a cluster running it.
#
#   ferry dev                                   # prints the API address and an admin token
#   export FERRY_ENDPOINT=http://127.0.0.1:7070 FERRY_TOKEN=<admin token>
#   export TF_CLI_CONFIG_FILE=$PWD/dev.tfrc     # see docs/terraform.md: dev_overrides, no registry
#   terraform apply
#
# Then change server_properties and apply: the configuration gets revision 2 in place, and the
# cluster, which follows latest_revision, is restarted onto it one node at a time (UPDATING,
# then ACTIVE). A cluster that names a fixed revision (configuration_revision = 1) stays on it.

terraform {
  required_providers {
    ferry = {
      source = "ferry.dev/ferry/ferry"
    }
  }
}

provider "ferry" {}

resource "ferry_configuration" "tuned" {
  name        = "tuned"
  description = "Five partitions by default, no auto-created topics"
  # Java properties format, as MSK takes it. The API checks every line against what Ferry's
  # broker accepts and names each bad line and key.
  server_properties = <<-EOT
    num.partitions = 5
    default.replication.factor = 3
    min.insync.replicas = 2
    auto.create.topics.enable = false
  EOT
}

resource "ferry_cluster" "orders" {
  name         = "orders"
  broker_count = 3
  zones        = ["zone-a", "zone-b", "zone-c"]

  # The configuration's properties first, then broker_config on top: a name set in both takes
  # broker_config's value.
  configuration_id       = ferry_configuration.tuned.id
  configuration_revision = ferry_configuration.tuned.latest_revision

  deletion_protection = true

  timeouts {
    update = "30m" # a rolling restart takes a while per node
  }
}

output "bootstrap_brokers" { value = ferry_cluster.orders.bootstrap_brokers }
output "configuration_revision" { value = ferry_cluster.orders.configuration_revision }
