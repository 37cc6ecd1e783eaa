// The Phase 5 alert rules, all notifying the environment's action group:
//   error rate       - share of persona endpoint requests answered 5xx (log query, a real ratio)
//   p95 latency      - RequestLatency_P95 of each persona endpoint
//   endpoint down    - a persona deployment with no running instance
//   scale-to-zero    - LiteLLM replicas above the minimum while no request came in (the proxy
//     failure          can scale to zero), and persona deployments above their minimum while idle
//                      (managed endpoints cannot reach zero; see endpoints.bicep)
targetScope = 'resourceGroup'

param environment string
param regionShort string
param location string
param tags object

param logAnalyticsWorkspaceId string
param actionGroupId string

param personaNames array
param endpointIds array
param deploymentIds array
param personaMinInstances array

param litellmAppId string
param litellmMinReplicas int

@description('Alert when more than this percentage of endpoint requests fail with 5xx.')
param errorRatePercent int = 5

@description('Alert when an endpoint p95 latency exceeds this many milliseconds.')
param p95LatencyMs int = 30000

var suffix = '${environment}-${regionShort}'
var actions = [
  {
    actionGroupId: actionGroupId
  }
]

resource errorRate 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-error-rate-${suffix}'
  location: location
  tags: tags
  properties: {
    displayName: 'Persona endpoint error rate above ${errorRatePercent}%'
    severity: 2
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'AmlOnlineEndpointTrafficLog | summarize total = count(), failed = countif(ResponseCode >= 500) by EndpointName | where total > 0 | extend errorRate = 100.0 * failed / total | where errorRate > ${errorRatePercent}'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroupId
      ]
    }
  }
}

resource p95Latency 'Microsoft.Insights/metricAlerts@2018-03-01' = [for (p, i) in personaNames: {
  name: 'alert-p95-latency-${p}-${suffix}'
  location: 'global'
  tags: tags
  properties: {
    description: 'p95 latency of persona ${p} above ${p95LatencyMs} ms'
    severity: 2
    enabled: true
    scopes: [
      endpointIds[i]
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'p95'
          metricName: 'RequestLatency_P95'
          operator: 'GreaterThan'
          threshold: p95LatencyMs
          timeAggregation: 'Average'
        }
      ]
    }
    actions: actions
  }
}]

resource endpointDown 'Microsoft.Insights/metricAlerts@2018-03-01' = [for (p, i) in personaNames: {
  name: 'alert-endpoint-down-${p}-${suffix}'
  location: 'global'
  tags: tags
  properties: {
    description: 'Persona ${p} deployment has no running instance'
    severity: 1
    enabled: true
    scopes: [
      deploymentIds[i]
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'capacity'
          metricName: 'DeploymentCapacity'
          operator: 'LessThan'
          threshold: 1
          timeAggregation: 'Minimum'
        }
      ]
    }
    actions: actions
  }
}]

resource endpointIdleAboveMinimum 'Microsoft.Insights/metricAlerts@2018-03-01' = [for (p, i) in personaNames: {
  name: 'alert-scale-down-${p}-${suffix}'
  location: 'global'
  tags: tags
  properties: {
    description: 'Persona ${p} kept more than ${personaMinInstances[i]} instance(s) for 30 minutes without a request'
    severity: 3
    enabled: true
    scopes: [
      deploymentIds[i]
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'instances'
          metricName: 'DeploymentCapacity'
          operator: 'GreaterThan'
          threshold: personaMinInstances[i]
          timeAggregation: 'Minimum'
        }
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'requests'
          metricName: 'RequestsPerMinute'
          operator: 'LessThan'
          threshold: 1
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: actions
  }
}]

resource litellmScaleToZero 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-scale-to-zero-litellm-${suffix}'
  location: 'global'
  tags: tags
  properties: {
    description: 'LiteLLM kept more than ${litellmMinReplicas} replica(s) for 30 minutes without a request'
    severity: 3
    enabled: true
    scopes: [
      litellmAppId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'replicas'
          metricName: 'Replicas'
          operator: 'GreaterThan'
          threshold: litellmMinReplicas
          timeAggregation: 'Minimum'
        }
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'requests'
          metricName: 'Requests'
          operator: 'LessThan'
          threshold: 1
          timeAggregation: 'Total'
        }
      ]
    }
    actions: actions
  }
}
