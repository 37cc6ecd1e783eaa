// Network for one environment: the VNet, its subnets (each with an NSG declared inline, so a
// redeploy never drops the association), and the private DNS zones the private endpoints use.
targetScope = 'resourceGroup'

@description('Environment short name: dev, staging or prod.')
param environment string

@description('Region short code used in names, e.g. eus2.')
param regionShort string

param location string

@description('Second octet of the environment VNet 10.X.0.0/16 (seed 000: 1 dev, 2 staging, 3 prod).')
@minValue(0)
@maxValue(255)
param networkOctet int

@description('Tags for every resource (Project, Environment, ServiceName, Owner).')
param tags object

var suffix = '${environment}-${regionShort}'
var vnetName = 'vnet-council-${suffix}'
var vnetAddressPrefix = '10.${networkOctet}.0.0/16'

// Index 1 (10.X.1.0/24): Container Apps (workload-profiles environment, delegated subnet).
// Index 3 (10.X.3.0/24): reserved for GPU compute (see README: GPU VMs decision).
// Index 4 (10.X.4.0/24): every private endpoint.
var containerAppsSubnetName = 'snet-containerapps-${suffix}'
var gpuSubnetName = 'snet-gpucompute-${suffix}'
var privateEndpointSubnetName = 'snet-privateendpoints-${suffix}'

// The private DNS zones that the private endpoints register in. Kept in this order: the
// outputs below index into it.
var privateDnsZoneNames = [
  'privatelink.vaultcore.azure.net'
  'privatelink.blob.${az.environment().suffixes.storage}'
  'privatelink.file.${az.environment().suffixes.storage}'
  'privatelink.queue.${az.environment().suffixes.storage}'
  'privatelink.table.${az.environment().suffixes.storage}'
  'privatelink.api.azureml.ms'
  'privatelink.notebooks.azure.net'
  'privatelink.azurecr.io'
]

resource nsgContainerApps 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: 'nsg-containerapps-${suffix}'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-vnet-https-inbound'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'VirtualNetwork'
          sourcePortRange: '*'
          destinationAddressPrefix: 'VirtualNetwork'
          destinationPortRanges: [
            '443'
            '80'
          ]
        }
      }
      {
        name: 'allow-azure-load-balancer-inbound'
        properties: {
          priority: 110
          direction: 'Inbound'
          access: 'Allow'
          protocol: '*'
          sourceAddressPrefix: 'AzureLoadBalancer'
          sourcePortRange: '*'
          destinationAddressPrefix: 'VirtualNetwork'
          destinationPortRange: '*'
        }
      }
      {
        name: 'deny-internet-inbound'
        properties: {
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource nsgPrivateEndpoints 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: 'nsg-privateendpoints-${suffix}'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-vnet-inbound'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'VirtualNetwork'
          sourcePortRange: '*'
          destinationAddressPrefix: 'VirtualNetwork'
          destinationPortRange: '443'
        }
      }
      {
        name: 'deny-all-other-inbound'
        properties: {
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: '*'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource nsgGpu 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: 'nsg-gpucompute-${suffix}'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'deny-internet-inbound'
        properties: {
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        vnetAddressPrefix
      ]
    }
    subnets: [
      {
        name: containerAppsSubnetName
        properties: {
          addressPrefix: '10.${networkOctet}.1.0/24'
          networkSecurityGroup: {
            id: nsgContainerApps.id
          }
          delegations: [
            {
              name: 'Microsoft.App.environments'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: gpuSubnetName
        properties: {
          addressPrefix: '10.${networkOctet}.3.0/24'
          networkSecurityGroup: {
            id: nsgGpu.id
          }
        }
      }
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: '10.${networkOctet}.4.0/24'
          networkSecurityGroup: {
            id: nsgPrivateEndpoints.id
          }
          // NSG rules apply to the private endpoints in this subnet.
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

resource privateDnsZones 'Microsoft.Network/privateDnsZones@2020-06-01' = [for zone in privateDnsZoneNames: {
  name: zone
  location: 'global'
  tags: tags
}]

resource privateDnsZoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [for (zone, i) in privateDnsZoneNames: {
  parent: privateDnsZones[i]
  name: 'link-${vnetName}'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

output vnetId string = vnet.id
output vnetName string = vnet.name
output containerAppsSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, containerAppsSubnetName)
output gpuSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, gpuSubnetName)
output privateEndpointSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, privateEndpointSubnetName)
output keyVaultDnsZoneId string = privateDnsZones[0].id
output storageDnsZoneIds object = {
  blob: privateDnsZones[1].id
  file: privateDnsZones[2].id
  queue: privateDnsZones[3].id
  table: privateDnsZones[4].id
}
output amlApiDnsZoneId string = privateDnsZones[5].id
output amlNotebooksDnsZoneId string = privateDnsZones[6].id
output acrDnsZoneId string = privateDnsZones[7].id
