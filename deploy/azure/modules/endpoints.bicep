// One managed online endpoint + deployment ('blue') per persona, in the AI Foundry project.
//
// Scale to zero: managed online deployments cannot run 0 instances. The platform minimum is 1
// instance (Azure Monitor autoscale on a deployment also stops at 1), and there is no idle
// shutdown for online endpoints (idle shutdown belongs to compute instances). So minInstances
// is @minValue(1) here, autoscale moves between minInstances and maxInstances on load, and the
// way to pay nothing for a persona is not to deploy it (deployPersonaEndpoints = false in the
// parameter file) or to use a pay-per-token model instead. See deploy/azure/README.md.
targetScope = 'resourceGroup'

param environment string
param regionShort string
param location string
param tags object

@description('The AI Foundry project (workspace) name the endpoints belong to.')
param projectName string

param logAnalyticsWorkspaceId string

@description('Personas: [{ name, model (azureml:// asset id), instanceType, minInstances, maxInstances }].')
param personas array

var suffix = '${environment}-${regionShort}'
var unique = take(uniqueString(subscription().id, resourceGroup().id), 4)

resource project 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: projectName
}

resource endpoints 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints@2024-10-01' = [for p in personas: {
  parent: project
  name: 'ep-${p.name}-${suffix}-${unique}'
  location: location
  tags: union(tags, { ServiceName: 'persona-${p.name}' })
  kind: 'Managed'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    description: 'AI Council persona ${p.name}'
    authMode: 'Key'
    // Scoring only through the workspace's private endpoint.
    publicNetworkAccess: 'Disabled'
  }
}]

resource deployments 'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments@2024-10-01' = [for (p, i) in personas: {
  parent: endpoints[i]
  name: 'blue'
  location: location
  tags: union(tags, { ServiceName: 'persona-${p.name}' })
  kind: 'Managed'
  sku: {
    name: 'Default'
    capacity: max(p.minInstances, 1)
  }
  properties: {
    endpointComputeType: 'Managed'
    model: p.model
    instanceType: p.instanceType
    appInsightsEnabled: true
    scaleSettings: {
      scaleType: 'Default'
    }
    requestSettings: {
      requestTimeout: 'PT90S'
      maxConcurrentRequestsPerInstance: 4
    }
    livenessProbe: {
      initialDelay: 'PT10M'
      period: 'PT30S'
      timeout: 'PT10S'
      failureThreshold: 30
    }
  }
}]

// All traffic to 'blue'. A second declaration of the endpoint, in its own module, because the
// traffic map can only name a deployment that already exists.
module traffic 'endpoint_traffic.bicep' = [for (p, i) in personas: {
  name: 'traffic-${p.name}-${suffix}'
  params: {
    projectName: projectName
    endpointName: endpoints[i].name
    location: location
    tags: union(tags, { ServiceName: 'persona-${p.name}' })
    deploymentName: deployments[i].name
  }
}]

resource autoscale 'Microsoft.Insights/autoscalesettings@2022-10-01' = [for (p, i) in personas: {
  name: 'as-${p.name}-${suffix}'
  location: location
  tags: union(tags, { ServiceName: 'persona-${p.name}' })
  properties: {
    enabled: true
    targetResourceUri: deployments[i].id
    profiles: [
      {
        name: 'load'
        capacity: {
          minimum: string(max(p.minInstances, 1))
          maximum: string(max(p.maxInstances, p.minInstances, 1))
          default: string(max(p.minInstances, 1))
        }
        rules: [
          {
            metricTrigger: {
              metricName: 'CpuUtilizationPercentage'
              metricResourceUri: deployments[i].id
              timeGrain: 'PT1M'
              statistic: 'Average'
              timeWindow: 'PT5M'
              timeAggregation: 'Average'
              operator: 'GreaterThan'
              threshold: 70
            }
            scaleAction: {
              direction: 'Increase'
              type: 'ChangeCount'
              value: '1'
              cooldown: 'PT10M'
            }
          }
          {
            metricTrigger: {
              metricName: 'CpuUtilizationPercentage'
              metricResourceUri: deployments[i].id
              timeGrain: 'PT1M'
              statistic: 'Average'
              timeWindow: 'PT15M'
              timeAggregation: 'Average'
              operator: 'LessThan'
              threshold: 20
            }
            scaleAction: {
              direction: 'Decrease'
              type: 'ChangeCount'
              value: '1'
              cooldown: 'PT15M'
            }
          }
        ]
      }
    ]
  }
}]

resource endpointDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = [for (p, i) in personas: {
  scope: endpoints[i]
  name: 'to-log-analytics'
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}]

output endpointNames array = [for (p, i) in personas: endpoints[i].name]
output endpointIds array = [for (p, i) in personas: endpoints[i].id]
output deploymentIds array = [for (p, i) in personas: deployments[i].id]
output scoringUris array = [for (p, i) in personas: endpoints[i].properties.scoringUri]
