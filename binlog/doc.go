// Package binlog is myha's one library for replication positions: MariaDB GTID
// positions (one GTID per domain), MySQL GTID sets (uuid:intervals) and classic
// binary log file/offset coordinates.
//
// Every decision about "who is most advanced", "what would be lost" and "who has
// errant transactions" is made from these types, so the comparison rules live
// here once. The package does no I/O.
package binlog
