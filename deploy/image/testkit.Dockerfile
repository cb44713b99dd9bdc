# The test tools as an image, for scripts/compose-test: the test backend, the load generator and
# the loss checker from crates/testkit, statically linked (musl) like otelspool's image and
# FROM scratch. Each compose service picks its binary with `entrypoint:`. scripts/image
# --testkit stages the three binaries as the build context.
FROM scratch
COPY otelspool-testbackend otelspool-loadgen otelspool-check /
ENTRYPOINT ["/otelspool-testbackend"]
