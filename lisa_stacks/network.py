"""The VPC: created (with flow logs) or imported by id from the config. Never ``from_lookup``."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from lisa_stacks.common import log_group
from lisa_stacks.config import DeploymentConfig


class Network(Construct):
    vpc: ec2.IVpc
    private_subnets: ec2.SelectedSubnets
    serve_security_group: ec2.SecurityGroup

    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, construct_id)
        if config.vpc.create is not None:
            create = config.vpc.create
            vpc = ec2.Vpc(
                self,
                "Vpc",
                ip_addresses=ec2.IpAddresses.cidr(create.cidr),
                max_azs=create.maxAzs,
                nat_gateways=create.natGateways,
                restrict_default_security_group=True,
                subnet_configuration=[
                    ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                    ec2.SubnetConfiguration(
                        name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                    ),
                ],
            )
            vpc.add_flow_log(
                "FlowLogs",
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                    log_group(self, "FlowLogGroup", config)
                ),
                traffic_type=ec2.FlowLogTrafficType.ALL,
            )
            self.vpc = vpc
        else:
            imported = config.vpc.import_
            assert imported is not None  # the config validator guarantees exactly one
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=imported.vpcId,
                vpc_cidr_block=imported.vpcCidr,
                availability_zones=imported.availabilityZones,
                private_subnet_ids=imported.privateSubnetIds,
                public_subnet_ids=imported.publicSubnetIds,
            )
            # No route table ids are imported: nothing in LISA reads or changes the subnets' routes.
            cdk.Annotations.of(self.vpc).acknowledge_warning(
                "@aws-cdk/aws-ec2:noSubnetRouteTableId", "LISA never reads the imported subnets' route tables"
            )
        self.private_subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        # The serve tasks' group lives here (not in the serve stack) so the workflow Lambda can hand
        # it to model stacks (ServeSecurityGroupId) without the core stack depending on the serve stack.
        self.serve_security_group = ec2.SecurityGroup(
            self,
            "ServeSecurityGroup",
            vpc=self.vpc,
            description=f"LISA {config.prefix} serve tasks (the only source model load balancers admit)",
            allow_all_outbound=True,
        )
