// Package container is the container integration suite: the reference Brain (test/erlang) in a
// container, pharos-node beside it on the host and in a container of its own, built from
// containers/*/Containerfile with podman (scripts/containers.sh, whose configuration is private
// to the project).
//
// Each test makes its own network: a bridge inside a network namespace of its own, with a veth
// to the host (P.1/24, P a private /24 no route of the host's covers, so the host's pharos-node
// and the test reach the containers) and one network namespace per container (P.2 the Brain,
// P.3 pharos-node), which podman joins with --network ns:PATH; nothing of the host's network
// changes but the host end of that veth. The test reads the Brain's statistics from its control port, which listens on the
// container's loopback, from inside the Brain's namespace (`ip netns exec`).
//
// The tests: pharos-node on the host delivers to the Brain through epmd and through a static
// distribution port (brain.addr, the Brain running without epmd); pharos-node in its container
// (`run`, acked mode, configuration and cookie file mounted, HEALTHCHECK) delivers what it is
// sent over HTTP while the Brain's container is stopped and started again; `podman kill` of a
// pharos-node container sending in acked mode, and a new container on the same spill volume,
// end with every record exactly once; compose.yaml's services, run with their environment, host
// names and volumes, deliver too.
//
// The OTP releases in the Brain's container come from PHAROS_CONTAINER_OTP (default: PHAROS_OTP,
// else 25): 25 is Debian's, 27 and 29 are scripts/otp.sh builds from the project's cache. Every
// container, volume and namespace carries the test binary's pid and is removed in t.Cleanup;
// TestMain removes those of test binaries that died, and fails if any of its own are left.
// Without podman the suite fails: it is never skipped.
package container
