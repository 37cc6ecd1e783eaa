// The LiteLLM proxy as a Container App: the image from the environment's private registry
// (pulled with the user-assigned identity), ingress reachable only inside the VNet, every key a
// Key Vault reference read with that identity, one <PERSONA>_API_KEY / <PERSONA>_API_BASE pair
// per persona (the names litellm_config.yaml reads through os.environ/...).
targetScope = 'resourceGroup'

param environment string
param regionShort string
param location string
param tags object

param managedEnvironmentId string

@description('User-assigned identity (identity module): AcrPull and Key Vault Secrets User.')
param identityId string
param identityClientId string

param registryLoginServer string

@description('Image name and tag in the registry, e.g. litellm-council:1.106.2-1.')
param image string

@description('Key Vault URI, e.g. https://kv-council-dev-eus2.vault.azure.net/.')
param keyVaultUri string

@description('Persona names, in the same order as scoringUris.')
param personaNames array
param scoringUris array

@description('0 lets the proxy scale to zero when idle (cold start on the next call).')
@minValue(0)
param minReplicas int

@minValue(1)
param maxReplicas int

var masterKeySecret = {
  name: 'litellm-master-key'
  keyVaultUrl: '${keyVaultUri}secrets/litellm-master-key'
  identity: identityId
}
var personaSecrets = [for p in personaNames: {
  name: '${p}-api-key'
  keyVaultUrl: '${keyVaultUri}secrets/${p}-api-key'
  identity: identityId
}]
var baseEnv = [
  {
    name: 'LITELLM_MASTER_KEY'
    secretRef: 'litellm-master-key'
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
]
var personaKeyEnv = [for p in personaNames: {
  name: '${toUpper(p)}_API_KEY'
  secretRef: '${p}-api-key'
}]
// Managed online endpoints serving an OpenAI-compatible model server answer under /v1 beside
// the /score URI Azure reports.
var personaBaseEnv = [for (p, i) in personaNames: {
  name: '${toUpper(p)}_API_BASE'
  value: replace(scoringUris[i], '/score', '/v1')
}]

resource litellm 'Microsoft.App/containerApps@2024-03-01' = {
  name: 'ca-litellm-${environment}-${regionShort}'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    managedEnvironmentId: managedEnvironmentId
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        // Inside an internal environment "external" means reachable from the VNet, never from
        // the internet: the environment itself has no public IP.
        external: true
        targetPort: 4000
        transport: 'http'
        allowInsecure: false
      }
      registries: [
        {
          server: registryLoginServer
          identity: identityId
        }
      ]
      secrets: concat([
        masterKeySecret
      ], personaSecrets)
    }
    template: {
      containers: [
        {
          name: 'litellm'
          image: '${registryLoginServer}/${image}'
          resources: {
            cpu: json('1.0')
            memory: '2Gi'
          }
          env: concat(baseEnv, personaKeyEnv, personaBaseEnv)
          probes: [
            {
              type: 'Liveness'
              httpGet: {
                path: '/health/liveliness'
                port: 4000
              }
              initialDelaySeconds: 10
              periodSeconds: 30
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/health/readiness'
                port: 4000
              }
              initialDelaySeconds: 10
              periodSeconds: 15
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'http-concurrency'
            http: {
              metadata: {
                concurrentRequests: '50'
              }
            }
          }
        ]
      }
    }
  }
}

output containerAppId string = litellm.id
output fqdn string = litellm.properties.configuration.ingress.fqdn
