"""What enters the IOC: the catalogue, the event contract, topics, the producer SDK,
the simulator."""
