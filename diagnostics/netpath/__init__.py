"""The Azure network path: plain records, the ARM JSON parser and pure evaluators (NSG, routes,
Azure Firewall, private DNS) that the network path checks use."""
