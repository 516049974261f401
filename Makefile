# For those who have make: every target calls ./dev, which needs only bash and Python 3.11+
# (./dev demo and ./dev test are the README's two commands; ./dev help lists the rest).
.PHONY: setup services stop-services remove-services test demo sync trial stop clean

setup services stop-services remove-services test demo sync trial stop clean:
	bash ./dev $@
