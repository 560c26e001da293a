"""The course map: every assignment, its guide section and the guide bullets it must teach.

One list, used by `autograder check` (each bullet is a `## ` section of its notebook) and by
the start page's course map test. Titles are the guide's bullet titles, verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Week:
    id: str
    phase: str
    guide: str          # guide section, e.g. "1.1 Week 1-2"
    title: str
    topics: tuple[str, ...]


PHASES = {
    "1": "Phase 1: Foundation",
    "2": "Phase 2: Distributed Systems Core",
    "3": "Phase 3: Communication & Integration",
    "4": "Phase 4: Production & Reliability",
    "P": "Projects, interviews and assessment",
}

WEEKS: tuple[Week, ...] = (
    Week("week01-core-database-concepts", "1", "1.1 Week 1-2", "Core Database Concepts",
         ("SQL vs NoSQL", "ACID Properties", "BASE Model", "OLAP vs OLTP")),
    Week("week03-database-internals", "1", "1.1 Week 3-4", "Database Internals",
         ("Indexing & B+ Trees", "Transaction Isolation", "WAL (Write Ahead Log)", "Read/Write Patterns")),
    Week("week05-data-management", "1", "1.1 Week 5-6", "Data Management",
         ("Data Modeling", "Data Partitioning", "Data Retention", "Hot/Cold Storage")),
    Week("week07-modern-storage", "1", "1.2 Week 7-8", "Modern Storage",
         ("Object Storage & S3 Basics", "File Systems", "Backup & Restore", "Bloom Filters")),
    Week("week09-scaling-fundamentals", "2", "2.1 Week 9-10", "Basic Scaling Concepts",
         ("Load Balancing", "Caching", "Redis/Memcached", "CDN")),
    Week("week11-data-distribution", "2", "2.1 Week 11-12", "Data Distribution",
         ("Sharding", "Consistent Hashing", "Replication", "Leader-Follower Replication")),
    Week("week13-distributed-theory", "2", "2.2 Week 13-14", "Theoretical Foundations",
         ("CAP Theorem", "Consistency Models", "Eventual Consistency", "Distributed Transactions")),
    Week("week15-consensus-and-fault-tolerance", "2", "2.2 Week 15-16", "Consensus & Fault Tolerance",
         ("Leader Election", "Fault Tolerance", "Partitioning")),
    Week("week17-service-architecture", "2", "2.3 Week 17-18", "Service Architecture",
         ("Monolith vs Microservices", "Microservices", "Service Discovery", "Database Scaling")),
    Week("week19-api-fundamentals", "3", "3.1 Week 19-20", "API Fundamentals",
         ("REST vs gRPC", "API Versioning", "Protocol Buffers", "Serialization")),
    Week("week21-api-infrastructure", "3", "3.1 Week 21-22", "API Infrastructure",
         ("API Gateway", "Rate Limiting", "API Rate Limits", "Throttling")),
    Week("week23-api-security", "3", "3.1 Week 23", "API Security",
         ("JWT", "OAuth", "CORS", "API Security")),
    Week("week24-messaging-patterns", "3", "3.2 Week 24", "Messaging Patterns",
         ("Message Queues", "Asynchronous Processing", "Dead Letter Queue", "Fan-out/Fan-in")),
    Week("week25-realtime-and-streaming", "3", "3.2 Week 25-26", "Advanced Communication",
         ("WebSockets", "Long Polling", "Service Mesh", "Queueing")),
    Week("week27-reliability-patterns", "4", "4.1 Week 27-28", "Reliability Patterns",
         ("Circuit Breaker", "Retry Patterns", "Idempotency", "Graceful Degradation")),
    Week("week29-failure-management", "4", "4.1 Week 29-30", "Failure Management",
         ("Failover", "Health Checks", "Heartbeats", "Retry Logic")),
    Week("week31-observability", "4", "4.2 Week 31-32", "Monitoring & Metrics",
         ("Metrics", "Logging", "Distributed Tracing", "Monitoring")),
    Week("week33-performance-and-scaling", "4", "4.2 Week 33", "Performance & Scaling",
         ("Load Testing", "Autoscaling", "SLO/SLI/SLA", "Error Budgets")),
    Week("week34-deployment-strategies", "4", "4.3 Week 34", "Deployment Strategies",
         ("Blue-Green Deployment", "Canary Deployments", "Rollbacks", "Chaos Engineering")),
    Week("week35-incident-operations", "4", "4.3 Week 35-36", "Operations",
         ("Incident Response", "Alerting", "Chaos Engineering")),
    Week("project1-ecommerce-platform", "P", "Practical Project 1", "E-commerce Platform", ()),
    Week("project2-realtime-analytics", "P", "Practical Project 2", "Real-time Analytics System", ()),
    Week("project3-multitenant-saas", "P", "Practical Project 3", "Multi-tenant SaaS Platform", ()),
    Week("interview-system-design", "P", "Assessment & Interview Preparation", "System Design Interview Practice",
         ()),
)

BY_ID = {w.id: w for w in WEEKS}
