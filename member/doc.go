// Package member puts a skipgrid process into the job's gossip cluster and
// tells it which other processes are alive.
//
// # Model
//
// Every process of a job (coordinator, parameter-server shards, workers) runs
// one [Node]. Nodes gossip over UDP and TCP with the SWIM protocol of
// github.com/hashicorp/memberlist: each node probes a few peers every probe
// interval, a node that does not answer becomes suspect, and a suspect that
// does not refute in time is declared dead by the whole cluster. Each node
// carries a small [Meta] record (its role, name, gRPC address and shard),
// gossiped as JSON in memberlist's node metadata, which is capped at 512
// bytes.
//
// A node learns of the others in two ways: [Node.Members] lists every node it
// knows, and the OnJoin and OnLeave callbacks of [Config] fire when a node
// appears or disappears. A node that was shut down without leaving is seen
// as "dead" after the failure detector's timeout (a few seconds with the
// "local" profile, several to a few tens of seconds with "lan"); a node
// that called [Node.Leave] is seen as "left" at once. Leave first gossips a
// leaving flag in the node's metadata (the field "leaving", absent
// otherwise), because memberlist does not tell its callers a leave from a
// failure.
//
// When [Config.SecretKey] is set, all gossip is encrypted and authenticated
// with it (AES-GCM). A node with another key, or none, cannot join: [Start]
// fails with an error that wraps [ErrJoin] and [ErrGossipKey], and the
// nodes it tried to reach log the refusal.
//
// # What callers must do
//
//  1. Fill a [Config] from [DefaultConfig], set Name, the addresses, Meta and
//     the seeds in Join (none for the first node), and call [Start].
//  2. Keep OnJoin and OnLeave short: they run inside memberlist's event path,
//     with its node table locked. Hand the event to a channel or a goroutine;
//     never block, and never call back into memberlist from them
//     ([Node.Members] is safe: it reads this package's own table).
//  3. On a clean exit call [Node.Leave] (so that the others see "left" at once
//     instead of waiting for the failure detector), then [Node.Shutdown].
//     Shutdown alone is what a crash looks like to the others.
//
// # Logging
//
// memberlist writes its own log lines with [DEBUG], [INFO], [WARN] and [ERR]
// prefixes. This package routes them to the configured *slog.Logger at the
// matching level with the attribute component=memberlist; its own lines carry
// component=member. Refused gossip (bad key, missing key) shows up there at
// error level on the receiving node.
package member
